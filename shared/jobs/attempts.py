"""Attempts and their leases: who may train a job now, and what happens when a worker is lost.

A running attempt holds a lease that its worker renews; a job whose lease expired lost its
worker (killed, out of memory, cut off). Such a job is requeued for a new attempt, which
resumes from its last checkpoint, until ``max_attempts`` have been lost. Every queued job that
is to be sent (a new one from the moment it is stored, a requeued one, a study's job when its
study lets it go) holds a dispatch deadline in the same set: if no worker has picked it up by
then (its message was lost), its message is sent again.
"""

from functools import partial
from typing import Any

from redis.client import Pipeline

from shared.jobs.changes import epoch_ms
from shared.jobs.store import JobStore, check_fence
from shared.models.jobs import ACTIVE_STATUSES, AttemptWorker, JobErrorInfo, JobRecord, JobStatus, StopReason
from shared.redis.clock import redis_seconds
from shared.redis.codec import strings


def after_lost_attempt(record: JobRecord, max_attempts: int) -> tuple[JobStatus, str, dict[str, Any]]:
    """What a job whose attempt lost its worker becomes: requeued, cancelled or failed."""
    attempt = record.attempt
    if record.status is JobStatus.CANCELLING:
        reason = f"the worker of attempt {attempt} was lost while cancelling"
        return JobStatus.CANCELLED, reason, {"stop_reason": StopReason.CANCELLED.value}
    # Attempts that a preemption ended were not lost: they do not count against the job.
    if attempt - record.preemptions >= max_attempts:
        message = (
            f"the worker of attempt {attempt} was lost, and no attempts are left (at most {max_attempts})"
        )
        error = JobErrorInfo(type="worker_lost", message=message).model_dump()
        return JobStatus.FAILED, message, {"stop_reason": StopReason.ERROR.value, "error": error}
    return JobStatus.QUEUED, f"requeued: the worker of attempt {attempt} stopped renewing its lease", {}


class AttemptStore:
    """Claims, lease renewals and the settling of expired leases, each atomic."""

    def __init__(self, store: JobStore, lease_seconds: float, max_attempts: int) -> None:
        self.store, self.lease_seconds, self.max_attempts = store, lease_seconds, max_attempts

    def claim(self, job_id: str, worker: AttemptWorker | None = None) -> JobRecord | None:
        """Start the job's next attempt under a fresh lease, or None when there is nothing to run.

        A queued job starts. A running job whose lease expired is taken over (its worker was
        lost). A job that has ended, whose attempt holds a live lease (a duplicate delivery of
        its message), or that a lost worker leaves with nothing to resume, is left alone (the
        reaper ends the last kind, keeping its last checkpoint as its model). The new attempt
        records ``worker``, the worker that runs it.
        """
        fields = {"worker": worker.model_dump(mode="json")} if worker is not None else {}
        return self.store.transact(job_id, partial(self._claim_step, fields=fields), self.store.keys.leases())

    def _claim_step(self, pipe: Pipeline, current: JobRecord, fields: dict[str, Any]) -> JobRecord | None:
        number = current.attempt + 1
        if current.status is JobStatus.QUEUED:
            reason = (
                "started"
                if current.attempt == 0
                else f"attempt {number} resumes after epoch {current.progress.epoch}"
            )
        elif (
            self._lost(pipe, current)
            and after_lost_attempt(current, self.max_attempts)[0] is JobStatus.QUEUED
        ):
            reason = f"attempt {number} takes over: the worker of attempt {current.attempt} was lost"
        else:
            pipe.unwatch()
            return None
        return self.store.write_transition(
            pipe, current, JobStatus.RUNNING, number, reason, fields, lease_seconds=self.lease_seconds
        )

    def renew(self, job_id: str, attempt: int) -> JobStatus:
        """Extend the lease of ``attempt`` and return the job's status (a cancel shows there);
        ``StaleAttempt`` once the job has moved on without this attempt."""

        def step(pipe: Pipeline, current: JobRecord) -> JobStatus:
            check_fence(current, attempt)
            until = redis_seconds(pipe) + self.lease_seconds
            pipe.multi()
            pipe.zadd(self.store.keys.leases(), {job_id: epoch_ms(until)})
            pipe.execute()
            return current.status

        return self.store.transact(job_id, step)

    def expired(self) -> list[str]:
        """Ids of jobs whose lease (running or dispatch) has expired."""
        return strings(
            self.store.redis.zrangebyscore(
                self.store.keys.leases(), "-inf", epoch_ms(redis_seconds(self.store.redis))
            )
        )

    def settle(self, job_id: str) -> tuple[JobRecord, bool] | None:
        """Deal with an expired lease, and say whether the job's message must be sent (again).

        A running job is requeued under a dispatch deadline, or, cancelling or out of attempts,
        ended under a new attempt number, so that the lost attempt, should it wake up, can write
        nothing, its model included; the ending names its last checkpoint, which its follow-ups
        make its model (``shared.jobs.endings``). A queued job whose dispatch deadline passed
        gets a new one. None when the lease turned out to be live.
        """
        dispatch = self.store.dispatch_seconds

        def step(pipe: Pipeline, current: JobRecord) -> tuple[JobRecord, bool] | None:
            if not self._expired(pipe, job_id) or current.status.is_terminal():
                pipe.unwatch()
                return None
            if current.status is JobStatus.QUEUED:
                until = redis_seconds(pipe) + dispatch
                pipe.multi()
                pipe.zadd(self.store.keys.leases(), {job_id: epoch_ms(until)})
                pipe.execute()
                return current, True
            to, reason, changes = after_lost_attempt(current, self.max_attempts)
            if to is JobStatus.QUEUED:
                settled = self.store.write_transition(
                    pipe, current, to, current.attempt, reason, changes, dispatch
                )
                return settled, True
            checkpoint = self.store.last_checkpoint(pipe, current)
            if checkpoint is not None:
                changes["model_checkpoint"] = checkpoint.model_dump()
            return self.store.write_transition(pipe, current, to, current.attempt + 1, reason, changes), False

        return self.store.transact(job_id, step, self.store.keys.leases())

    def _lost(self, pipe: Pipeline, current: JobRecord) -> bool:
        return current.status in ACTIVE_STATUSES and self._expired(pipe, current.id)

    def _expired(self, pipe: Pipeline, job_id: str) -> bool:
        expires = pipe.zscore(self.store.keys.leases(), job_id)
        return expires is None or float(expires) <= epoch_ms(redis_seconds(pipe))
