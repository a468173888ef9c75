"""Sending jobs to their Celery queue; a message carries only the job's id.

A job does not go to Celery when it is stored: it waits in the scheduler's sets
(``shared.scheduling``) until the dispatcher releases it to a free slot of its queue.
"""

import logging

from celery import Celery

from shared.jobs.store import JobStore
from shared.logs import job_fields
from shared.models.jobs import JobRecord
from shared.queue import send_training
from shared.scheduling.waiting import ensure_dispatch

log = logging.getLogger(__name__)


class Dispatch:
    """Sends released jobs to the queue they were stored with, and makes sure queued ones wait."""

    def __init__(self, store: JobStore, celery: Celery) -> None:
        self.store, self.celery = store, celery

    def send(self, record: JobRecord) -> bool:
        """Make sure a queued job reaches a worker: a job the dispatcher released (whose message
        was lost, or never sent) is sent again; any other waits for its turn. Whether it was sent."""
        if not ensure_dispatch(self.store.redis, self.store.keys, record):
            return False
        self.release(record.id, record.queue)
        return True

    def release(self, job_id: str, queue: str) -> None:
        """Send the message of a job the dispatcher released to ``queue`` (its queue, or the
        direct queue of the worker chosen for it). Should the broker refuse it, the job holds a
        dispatch deadline, past which a worker's reaper sends it again."""
        try:
            send_training(self.celery, job_id, queue)
        except Exception as exc:
            log.warning(
                "job %s: not sent (%s); it is sent again at its dispatch deadline",
                job_id,
                exc,
                extra=job_fields(job_id),
            )
