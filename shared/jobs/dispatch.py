"""Sending stored jobs to their Celery queue; a message carries only the job's id."""

import logging

from celery import Celery

from shared.errors import ServiceUnavailable
from shared.jobs.store import JobStore
from shared.models.jobs import JobRecord, JobStatus, StopReason
from shared.queue import send_training

log = logging.getLogger(__name__)


class Dispatch:
    """Sends jobs to the queue they were stored with."""

    def __init__(self, store: JobStore, celery: Celery) -> None:
        self.store, self.celery = store, celery

    def send(self, record: JobRecord) -> None:
        """Send the job's message (again, for a job whose message was lost)."""
        send_training(self.celery, record.id, record.queue)

    def send_new(self, record: JobRecord) -> None:
        """Send a job just stored; if the broker refuses it, the job fails rather than waits."""
        try:
            self.send(record)
        except Exception as exc:
            log.warning("job %s: could not be queued: %s", record.id, exc)
            error = {"type": "enqueue_failed", "message": "the job could not be put on its queue"}
            fields = {"stop_reason": StopReason.ERROR.value, "error": error}
            self.store.change_status(
                record.id, JobStatus.FAILED, reason="could not be enqueued", fields=fields
            )
            raise ServiceUnavailable(f"job {record.id} could not be queued; submit it again later") from exc
