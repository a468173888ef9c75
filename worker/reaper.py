"""Housekeeping that every worker runs with its heartbeat: lost attempts, endings, waiting
studies and what is past its retention.

Any live worker settles a job whose lease expired (its worker was killed, ran out of memory
or lost its network): it is requeued to resume from its last checkpoint, or, if it was being
cancelled or has no attempts left, it ends, and its last checkpoint becomes its model (the
ending's follow-ups copy it). A requeued
job that no worker picked up by its dispatch deadline has its message sent again. Ended jobs
get their follow-ups (``shared.jobs.endings``), and studies with held jobs are made sure to go
on. What is past its retention is swept (``worker.retention``).
"""

import logging

from shared.errors import JobNotFound
from shared.jobs.attempts import AttemptStore
from shared.jobs.dispatch import Dispatch
from shared.jobs.endings import Endings
from shared.logs import job_fields
from shared.settings import Settings
from worker.retention import RetentionSweep

log = logging.getLogger(__name__)


class Reaper:
    """Settles expired leases and due endings, and sweeps what is past its retention; safe to run
    in every worker."""

    def __init__(
        self,
        attempts: AttemptStore,
        dispatch: Dispatch,
        endings: Endings,
        retention: RetentionSweep,
        settings: Settings,
    ) -> None:
        self.attempts, self.store, self.settings = attempts, attempts.store, settings
        self.dispatch, self.endings, self.retention = dispatch, endings, retention

    def run_once(self) -> None:
        """One pass over the expired leases, the due endings, the waiting studies and what is past
        its retention."""
        for job_id in self.attempts.expired():
            self.settle(job_id)
        self.endings.settle()
        self.endings.move_on_waiting()
        self.retention.run_once()

    def settle(self, job_id: str) -> None:
        """Requeue, cancel or fail one job whose lease expired, or send a lost message again."""
        try:
            record = self.store.get(job_id)
        except JobNotFound:
            self.store.purge(job_id)
            return
        outcome = self.attempts.settle(job_id)
        if outcome is None:
            return
        settled, send = outcome
        if settled.transitions == record.transitions:  # a queued job: only its deadline was renewed
            if self.dispatch.send(settled):
                log.info(
                    "job %s: released, and no worker took it within its dispatch deadline; its "
                    "message is sent again",
                    job_id,
                    extra=job_fields(job_id, settled.attempt),
                )
            return
        log.warning(
            "job %s: %s", job_id, settled.transitions[-1].reason, extra=job_fields(job_id, settled.attempt)
        )
        if send:
            self.dispatch.send(settled)
