"""Sending stored jobs to their Celery queue; a message carries only the job's id."""

import logging

from celery import Celery

from shared.jobs.store import JobStore
from shared.logs import job_fields
from shared.models.jobs import JobRecord
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
        """Send a job just stored. Should the broker refuse it, the job stays queued: it was
        stored with a dispatch deadline, past which a worker's reaper sends it again."""
        try:
            self.send(record)
        except Exception as exc:
            log.warning(
                "job %s: not sent (%s); it is sent again at its dispatch deadline",
                record.id,
                exc,
                extra=job_fields(record.id),
            )
