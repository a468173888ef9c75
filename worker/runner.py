"""One job's life on a worker: claim it, train it, and record how it ended.

Keras is imported only when a job is actually trained (``worker.training``), never at
import time, so the Celery parent process that forks pool children stays free of it.
"""

import logging
from dataclasses import dataclass, field
from typing import Any

from shared.errors import InvalidTransition, JobNotFound, StaleAttempt, TrainingError
from shared.jobs import JobErrorInfo, JobRecord, JobStatus, StopReason
from shared.settings import Settings
from shared.store import JobStore

log = logging.getLogger(__name__)


@dataclass
class Ending:
    """How an attempt ended, as the fields of the job's terminal transition."""

    status: JobStatus
    stop_reason: StopReason
    reason: str
    fields: dict[str, Any] = field(default_factory=dict)


def run_job(job_id: str, store: JobStore, settings: Settings) -> None:
    """Train job ``job_id`` if it is still queued; every outcome ends in a terminal status."""
    record = claim(job_id, store)
    if record is None:
        return
    log.info("job %s: attempt %d started", job_id, record.attempt)
    try:
        ending = train(record, store, settings)
    except StaleAttempt as exc:
        log.warning("job %s: attempt %d replaced, stopping: %s", job_id, record.attempt, exc)
        return
    finish(job_id, record.attempt, ending, store)


def claim(job_id: str, store: JobStore) -> JobRecord | None:
    """Start the job's next attempt, or None when there is nothing to run."""
    try:
        return store.change_status(
            job_id, JobStatus.RUNNING, new_attempt=True, reason="picked up by a worker"
        )
    except JobNotFound:
        log.warning("job %s: no such job, message dropped", job_id)
    except InvalidTransition as exc:
        log.info("job %s: not started: %s", job_id, exc)
    return None


def train(record: JobRecord, store: JobStore, settings: Settings) -> Ending:
    """Train the job and describe how it ended; failures become a readable error."""
    try:
        from worker import training

        outcome = training.train(record.id, record.attempt, record.spec, store, settings)
    except TrainingError as exc:
        return failed(record.id, "training_error", str(exc))
    except (StaleAttempt, JobNotFound):
        raise
    except Exception as exc:
        log.exception("job %s: training crashed", record.id)
        return failed(record.id, "internal_error", f"training stopped unexpectedly ({type(exc).__name__})")
    fields: dict[str, Any] = {"has_model": outcome.has_model, "stop_reason": outcome.stop_reason.value}
    if outcome.result is not None:
        fields["result"] = outcome.result.model_dump()
    if outcome.stop_reason is StopReason.CANCELLED:
        return Ending(JobStatus.CANCELLED, outcome.stop_reason, "cancel request honoured", fields)
    return Ending(
        JobStatus.SUCCEEDED, outcome.stop_reason, f"training ended: {outcome.stop_reason.value}", fields
    )


def failed(job_id: str, error_type: str, message: str) -> Ending:
    """A failed ending with the error users see."""
    log.warning("job %s: failed: %s", job_id, message)
    error = JobErrorInfo(type=error_type, message=message).model_dump()
    return Ending(JobStatus.FAILED, StopReason.ERROR, message, {"stop_reason": "error", "error": error})


def finish(job_id: str, attempt: int, ending: Ending, store: JobStore) -> None:
    """Record the ending; a job cancelled meanwhile ends ``cancelled``, keeping what it made."""
    try:
        store.change_status(
            job_id, ending.status, attempt=attempt, reason=ending.reason, fields=ending.fields
        )
    except InvalidTransition:
        if store.status(job_id) is not JobStatus.CANCELLING:
            raise
        fields = {**ending.fields, "stop_reason": StopReason.CANCELLED.value}
        store.change_status(job_id, JobStatus.CANCELLED, attempt=attempt, reason="cancelled", fields=fields)
    log.info(
        "job %s: attempt %d ended %s (%s)", job_id, attempt, ending.status.value, ending.stop_reason.value
    )
