"""Attempts and their leases: who may train a job now, and what happens when a worker is lost.

A running attempt holds a lease that its worker renews; a job whose lease expired lost its
worker (killed, out of memory, cut off). Such a job is requeued for a new attempt, which
resumes from its last checkpoint, until ``max_attempts`` have been lost.
"""

import time
from typing import Any

from redis.client import Pipeline

from shared.errors import StaleAttempt
from shared.jobs import JobErrorInfo, JobRecord, JobStatus, StopReason
from shared.redis_codec import strings
from shared.store import JobStore, check_fence, epoch_ms

ACTIVE = frozenset({JobStatus.RUNNING, JobStatus.CANCELLING})


def after_lost_attempt(record: JobRecord, max_attempts: int) -> tuple[JobStatus, str, dict[str, Any]]:
    """What a job whose attempt lost its worker becomes: requeued, cancelled or failed."""
    attempt = record.attempt
    if record.status is JobStatus.CANCELLING:
        return JobStatus.CANCELLED, f"the worker of attempt {attempt} was lost while cancelling", _cancelled()
    if attempt >= max_attempts:
        message = (
            f"the worker of attempt {attempt} was lost, and no attempts are left (at most {max_attempts})"
        )
        error = JobErrorInfo(type="worker_lost", message=message).model_dump()
        return JobStatus.FAILED, message, {"stop_reason": StopReason.ERROR.value, "error": error}
    return JobStatus.QUEUED, f"requeued: the worker of attempt {attempt} stopped renewing its lease", {}


def _cancelled() -> dict[str, Any]:
    return {"stop_reason": StopReason.CANCELLED.value}


class AttemptStore:
    """Claims, lease renewals and the settling of expired leases, each atomic."""

    def __init__(self, store: JobStore, lease_seconds: float, max_attempts: int) -> None:
        self.store, self.lease_seconds, self.max_attempts = store, lease_seconds, max_attempts

    def claim(self, job_id: str) -> JobRecord | None:
        """Start the job's next attempt under a fresh lease, or None when there is nothing to run.

        A queued job starts. A running job whose lease expired is taken over (its worker was
        lost). A job that has ended, or whose attempt holds a live lease (a duplicate delivery
        of its message), is left alone.
        """
        return self.store.transact(job_id, self._claim_step, self.store.keys.leases())

    def _claim_step(self, pipe: Pipeline, current: JobRecord) -> JobRecord | None:
        number = current.attempt + 1
        if current.status is JobStatus.QUEUED:
            reason = (
                "started"
                if current.attempt == 0
                else f"attempt {number} resumes after epoch {current.progress.epoch}"
            )
        elif current.status in ACTIVE and self._expired(pipe, current.id):
            to, reason, fields = after_lost_attempt(current, self.max_attempts)
            if to is not JobStatus.QUEUED:
                self.store.write_transition(pipe, current, to, current.attempt, reason, fields)
                return None
            reason = f"attempt {number} takes over: the worker of attempt {current.attempt} was lost"
        else:
            pipe.unwatch()
            return None
        return self.store.write_transition(
            pipe, current, JobStatus.RUNNING, number, reason, {}, lease_seconds=self.lease_seconds
        )

    def renew(self, job_id: str, attempt: int) -> JobStatus:
        """Extend the lease of ``attempt`` and return the job's status (a cancel shows there);
        ``StaleAttempt`` once the job has moved on without this attempt."""

        def step(pipe: Pipeline, current: JobRecord) -> JobStatus:
            check_fence(job_id, current.attempt, attempt)
            if current.status not in ACTIVE:
                raise StaleAttempt(
                    f"job {job_id} is {current.status.value}; attempt {attempt} holds no lease"
                )
            pipe.multi()
            pipe.zadd(self.store.keys.leases(), {job_id: epoch_ms(time.time() + self.lease_seconds)})
            pipe.execute()
            return current.status

        return self.store.transact(job_id, step)

    def expired(self) -> list[str]:
        """Ids of jobs whose lease has expired."""
        return strings(
            self.store.redis.zrangebyscore(self.store.keys.leases(), "-inf", epoch_ms(time.time()))
        )

    def settle(self, job_id: str, fields: dict[str, Any] | None = None) -> JobRecord | None:
        """Requeue, cancel or fail a job whose lease expired (with ``fields`` if it ends); None
        when its lease turned out to be live or it had already moved on."""

        def step(pipe: Pipeline, current: JobRecord) -> JobRecord | None:
            if current.status not in ACTIVE or not self._expired(pipe, job_id):
                pipe.unwatch()
                return None
            to, reason, changes = after_lost_attempt(current, self.max_attempts)
            extra = fields if to.is_terminal() and fields else {}
            return self.store.write_transition(
                pipe, current, to, current.attempt, reason, {**changes, **extra}
            )

        return self.store.transact(job_id, step, self.store.keys.leases())

    def _expired(self, pipe: Pipeline, job_id: str) -> bool:
        expires = pipe.zscore(self.store.keys.leases(), job_id)
        return expires is None or float(expires) <= epoch_ms(time.time())
