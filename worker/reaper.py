"""Housekeeping that every worker runs with its heartbeat: lost attempts and old jobs.

Any live worker settles a job whose attempt's lease expired (its worker was killed, ran out
of memory or lost its network): it is requeued to resume from its last checkpoint, or, if it
was being cancelled or has no attempts left, it ends with its last checkpoint as its model.
Finished jobs past the retention time are deleted with their files.
"""

import logging
import shutil
import time
from pathlib import Path

from celery import Celery

from shared.artifacts import clear_checkpoints, job_dir, promote_checkpoint
from shared.attempts import AttemptStore
from shared.errors import JobNotFound
from shared.jobs import JobRecord, JobStatus
from shared.queue import send_training
from shared.settings import Settings
from shared.store import JobStore

log = logging.getLogger(__name__)


def keep_last_checkpoint(store: JobStore, artifacts_dir: Path, record: JobRecord) -> bool:
    """Make the job's last committed checkpoint its model; whether there was one."""
    epoch = record.progress.epoch
    if epoch == 0:
        return False
    (last,) = store.epoch_records(record.id, after_epoch=epoch - 1, limit=1)
    return promote_checkpoint(artifacts_dir, record.id, last.attempt, epoch, record.attempt)


class Reaper:
    """Settles expired leases and deletes jobs past retention; safe to run in every worker."""

    def __init__(self, attempts: AttemptStore, celery: Celery, settings: Settings) -> None:
        self.attempts, self.store, self.celery, self.settings = attempts, attempts.store, celery, settings

    def run_once(self) -> None:
        """One pass over the expired leases and the finished jobs past retention."""
        for job_id in self.attempts.expired():
            self.settle(job_id)
        for job_id in self.store.finished_before(time.time() - self.settings.retention_seconds):
            shutil.rmtree(job_dir(self.settings.artifacts_dir, job_id), ignore_errors=True)
            self.store.purge(job_id)
            log.info("job %s: deleted after the retention time", job_id)

    def settle(self, job_id: str) -> None:
        """Requeue, cancel or fail one job whose lease expired."""
        try:
            record = self.store.get(job_id)
        except JobNotFound:
            return
        ends = record.status is JobStatus.CANCELLING or record.attempt >= self.attempts.max_attempts
        fields = (
            {"has_model": keep_last_checkpoint(self.store, self.settings.artifacts_dir, record)}
            if ends
            else {}
        )
        settled = self.attempts.settle(job_id, fields)
        if settled is None:
            return
        log.warning("job %s: %s", job_id, settled.transitions[-1].reason)
        if settled.status is JobStatus.QUEUED:
            send_training(self.celery, job_id, settled.spec.resources.queue or self.settings.default_queue)
        elif settled.status.is_terminal():
            clear_checkpoints(self.settings.artifacts_dir, job_id)
