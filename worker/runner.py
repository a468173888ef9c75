"""One attempt of a job on a worker: claim it, train it under its lease, record how it ended.

Keras is imported only when a job is actually trained (``worker.training``), never at
import time, so the Celery parent process that forks pool children stays free of it.
"""

import logging
import os
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from shared.errors import InvalidTransition, JobNotFound, KerasJobsError, StaleAttempt, TrainingError
from shared.jobs.attempts import AttemptStore
from shared.logs import set_attempt
from shared.models.jobs import AttemptWorker, JobErrorInfo, JobRecord, JobStatus, StopReason
from shared.settings import Settings
from shared.storage.base import ArtifactStore, StoreUnavailable
from shared.storage.layout import job_prefix
from shared.studies.search import Judge, Search
from worker.cache import ArtifactCache
from worker.gpu_memory import ran_out_of_memory
from worker.lease import LeaseKeeper
from worker.retry import TRANSIENT, with_retries

log = logging.getLogger(__name__)

EXIT_OVERDUE = 70  # the process ends itself: a cancelled job would not stop


@dataclass
class Ending:
    """How an attempt ended, as the fields of the job's terminal transition."""

    status: JobStatus
    stop_reason: StopReason
    reason: str
    fields: dict[str, Any] = field(default_factory=dict)


def run_job(
    job_id: str,
    attempts: AttemptStore,
    settings: Settings,
    cache: ArtifactCache,
    worker: AttemptWorker | None = None,
    search: Search | None = None,
) -> None:
    """Run the next attempt of job ``job_id``, if it has one to run; every outcome is recorded.

    The attempt reads and writes the artifact store through ``cache``, and records ``worker``,
    this worker and its device, when it is known.
    """
    claim = partial(attempts.claim, job_id, worker)
    record = with_retries(claim, f"job {job_id}: claim", settings.redis_retry_seconds)
    if record is None:
        log.info("job %s: nothing to run (ended, or another attempt holds its lease)", job_id)
        return
    set_attempt(record.attempt)
    log.info("job %s: attempt %d started (%s)", job_id, record.attempt, record.transitions[-1].reason)
    overdue = partial(end_overdue, record, attempts, settings)
    try:
        # The lease is kept until the ending is recorded, retries through a Redis outage included.
        with LeaseKeeper(attempts, job_id, record.attempt, settings.cancel_grace_seconds, overdue) as lease:
            judge = search.judge(record.study.id, record.study.trial) if search and record.study else None
            ending = train(record, attempts, settings, lease, cache, judge)
            finish = partial(record_ending, job_id, record.attempt, ending, attempts)
            with_retries(finish, f"job {job_id}: finish", settings.redis_retry_seconds)
    except (StaleAttempt, JobNotFound) as exc:
        if not forget_if_vanished(job_id, attempts, cache.store):
            log.warning("job %s: attempt %d replaced, stopping: %s", job_id, record.attempt, exc)
    except (*TRANSIENT, StoreUnavailable) as exc:
        # Redis stayed away past the retries, or the artifact store is away: drop this attempt
        # rather than fail the job; its lease lapses and the reaper hands the job to an attempt
        # that resumes from its last checkpoint (until MAX_ATTEMPTS are lost).
        log.error("job %s: attempt %d abandoned: %s: %s", job_id, record.attempt, type(exc).__name__, exc)


def forget_if_vanished(job_id: str, attempts: AttemptStore, artifacts: ArtifactStore) -> bool:
    """Whether the job is gone from Redis (a Redis restarted without persistence, say); if so its
    files go too, since nothing names them any more."""
    try:
        attempts.store.get(job_id)
        return False
    except JobNotFound:
        pass
    except Exception:  # Redis away: the job may well be there
        return False
    artifacts.delete_prefix(job_prefix(job_id))
    log.error(
        "job %s: gone from Redis while it trained (was Redis restarted without persistence?); "
        "stopped, and its files deleted",
        job_id,
    )
    return True


def train(
    record: JobRecord,
    attempts: AttemptStore,
    settings: Settings,
    lease: LeaseKeeper,
    cache: ArtifactCache,
    judge: Judge | None = None,
) -> Ending:
    """Train the attempt and describe how it ended; failures become a readable error. A trial's
    epochs are each judged by its search's pruner (``judge``)."""
    try:
        from worker import training

        attempt = training.start(record, attempts.store, cache)
        outcome = training.train(attempt, attempts.store, settings, lease.signals, cache, judge)
    except TrainingError as exc:
        return failed(record.id, "training_error", str(exc))
    except (StaleAttempt, JobNotFound, StoreUnavailable, *TRANSIENT):
        raise
    except Exception as exc:
        if ran_out_of_memory(exc):
            return failed(record.id, "out_of_memory", out_of_memory_message(record, settings))
        log.exception("job %s: training crashed", record.id)
        return failed(record.id, "internal_error", f"training stopped unexpectedly ({type(exc).__name__})")
    fields: dict[str, Any] = {"has_model": outcome.has_model, "stop_reason": outcome.stop_reason.value}
    if outcome.result is not None:
        fields["result"] = outcome.result.model_dump()
    if outcome.stop_reason is StopReason.CANCELLED:
        return Ending(JobStatus.CANCELLED, outcome.stop_reason, "cancel request honoured", fields)
    if outcome.stop_reason is StopReason.PREEMPTED:
        return preempted(attempts.store.get(record.id))
    return Ending(
        JobStatus.SUCCEEDED, outcome.stop_reason, f"training ended: {outcome.stop_reason.value}", fields
    )


def out_of_memory_message(record: JobRecord, settings: Settings) -> str:
    """What a job that outgrew its device's memory is told: the limit, and what to ask for."""
    asked = record.spec.resources.gpu_memory_mb
    limit = settings.gpu_memory_mb
    where = f"this worker's share of its GPU, {limit} MiB" if limit else "the memory of its device"
    hint = (
        f"it asked for {asked} MiB (resources.gpu_memory_mb); ask for more"
        if asked
        else "ask for the memory it needs with resources.gpu_memory_mb"
    )
    return (
        f"training ran out of GPU memory: the model and its batches outgrew {where}; {hint}, "
        "or use smaller batches"
    )


def preempted(record: JobRecord) -> Ending:
    """Not an ending: the job waits again, to resume from its last checkpoint."""
    reason = f"preempted by job {record.preempt_by}; resumes after epoch {record.progress.epoch}"
    fields = {"preempt_by": None, "preemptions": record.preemptions + 1}
    return Ending(JobStatus.QUEUED, StopReason.PREEMPTED, reason, fields)


def failed(job_id: str, error_type: str, message: str) -> Ending:
    """A failed ending with the error users see."""
    log.warning("job %s: failed: %s", job_id, message)
    error = JobErrorInfo(type=error_type, message=message).model_dump()
    return Ending(JobStatus.FAILED, StopReason.ERROR, message, {"stop_reason": "error", "error": error})


def record_ending(job_id: str, attempt: int, ending: Ending, attempts: AttemptStore) -> None:
    """Record the ending; a job cancelled meanwhile ends ``cancelled``, keeping what it made."""
    store = attempts.store
    try:
        store.change_status(
            job_id, ending.status, attempt=attempt, reason=ending.reason, fields=ending.fields
        )
    except StaleAttempt:
        current = store.get(job_id)
        if (current.attempt, current.status) != (attempt, ending.status):
            raise
        return  # a retry of a write whose reply was lost: it is done already
    except InvalidTransition:
        if store.status(job_id) is not JobStatus.CANCELLING:
            raise
        fields = {**ending.fields, "stop_reason": StopReason.CANCELLED.value}
        store.change_status(job_id, JobStatus.CANCELLED, attempt=attempt, reason="cancelled", fields=fields)
    log.info(
        "job %s: attempt %d ended %s (%s)", job_id, attempt, ending.status.value, ending.stop_reason.value
    )


def end_overdue(record: JobRecord, attempts: AttemptStore, settings: Settings) -> None:
    """End a job whose training ignores its cancel request, then this process with it.

    Training may be stuck inside a step that never returns; only ending the process frees the
    worker (Celery's pool, or the service manager, starts a new one). The job keeps its last
    checkpoint as its model.
    """
    store = attempts.store
    try:
        checkpoint = store.last_checkpoint(store.redis, store.get(record.id))
        fields: dict[str, Any] = {"stop_reason": StopReason.CANCELLED.value}
        if checkpoint is not None:  # the ending's follow-ups make it the job's model
            fields["model_checkpoint"] = checkpoint.model_dump()
        reason = (
            f"cancel not honoured within {settings.cancel_grace_seconds:.0f} s; its worker was terminated"
        )
        store.change_status(
            record.id, JobStatus.CANCELLED, attempt=record.attempt, reason=reason, fields=fields
        )
    except (KerasJobsError, OSError) as exc:
        log.error("job %s: could not record the cancellation: %s", record.id, exc)
    finally:
        log.error("job %s: terminating this worker process (pid %d)", record.id, os.getpid())
        os._exit(EXIT_OVERDUE)
