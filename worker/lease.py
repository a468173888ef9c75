"""Keeping a running attempt's lease, in a background thread of the process that trains it."""

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType

from shared.errors import JobNotFound, StaleAttempt
from shared.jobs.attempts import AttemptStore
from shared.logs import job_fields
from shared.models.jobs import JobStatus

log = logging.getLogger(__name__)


@dataclass
class AttemptSignals:
    """Flags shared by the lease keeper's thread and the training loop."""

    lost: threading.Event = field(default_factory=threading.Event)
    """Set when a newer attempt owns the job: training stops at its next batch."""
    fitting: threading.Event = field(default_factory=threading.Event)
    """Set while ``fit`` runs, the only time training can honour a cancel request."""


class LeaseKeeper:
    """Renews the lease every third of its length while the attempt trains.

    It also watches for what training cannot see for itself: a lease lost to a newer attempt
    (``signals.lost`` is set), and a cancel request not honoured within ``grace_seconds`` of
    training time (``on_overdue`` is called, which ends the process).
    """

    def __init__(
        self,
        attempts: AttemptStore,
        job_id: str,
        attempt: int,
        grace_seconds: float,
        on_overdue: Callable[[], None],
    ) -> None:
        self.attempts, self.job_id, self.attempt = attempts, job_id, attempt
        self.grace_seconds, self.on_overdue = grace_seconds, on_overdue
        self.signals = AttemptSignals()
        self._stopped = threading.Event()
        self._cancel_seen: float | None = None
        self._thread = threading.Thread(target=self._run, name=f"lease-{job_id}", daemon=True)
        # The thread does not inherit the job's logging context: its lines name the job themselves.
        self._log_fields = job_fields(job_id, attempt)

    def __enter__(self) -> "LeaseKeeper":
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stopped.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stopped.wait(self.attempts.lease_seconds / 3):
            self.tick()

    def tick(self) -> None:
        """Renew once, and act on what the renewal saw."""
        try:
            status = self.attempts.renew(self.job_id, self.attempt)
        except (StaleAttempt, JobNotFound) as exc:
            # Replaced by a newer attempt, or gone from Redis altogether (a Redis restarted
            # without persistence): either way this attempt must stop.
            log.warning("job %s: %s", self.job_id, exc, extra=self._log_fields)
            self.signals.lost.set()
            self._stopped.set()
            return
        except Exception as exc:  # Redis away: the next tick tries again
            log.warning("job %s: lease renewal failed: %s", self.job_id, exc, extra=self._log_fields)
            return
        self._watch_cancel(status)

    def _watch_cancel(self, status: JobStatus) -> None:
        if status is not JobStatus.CANCELLING or not self.signals.fitting.is_set():
            self._cancel_seen = None  # loading data or saving the model: nothing to cut short yet
            return
        now = time.monotonic()
        self._cancel_seen = self._cancel_seen or now
        if now - self._cancel_seen > self.grace_seconds:
            log.error(
                "job %s: cancel not honoured within %.0f s",
                self.job_id,
                self.grace_seconds,
                extra=self._log_fields,
            )
            self._stopped.set()
            self.on_overdue()
