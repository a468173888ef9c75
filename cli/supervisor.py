"""Keeps ``kjobs worker``'s worker processes running: a crashed one is started again after a
backoff, a worker that keeps crashing ends the whole supervisor, and SIGTERM or SIGINT stops
every worker the way Celery likes (a warm shutdown that finishes the job in hand first).
"""

import logging
import os
import signal
import subprocess
import sys
import time
from collections import deque
from collections.abc import Mapping
from contextlib import suppress
from dataclasses import dataclass, field
from types import FrameType

from cli.processes import die_with_parent
from cli.worker_layout import WorkerProcess

log = logging.getLogger(__name__)

POLL_SECONDS = 0.5
# Below docker-compose's stop_grace_period, so the workers' own shutdown is never cut short by it.
STOP_GRACE_SECONDS = 100.0
EXIT_GAVE_UP = 1
RESTART_WINDOW_SECONDS = 60.0


@dataclass(frozen=True)
class RestartPolicy:
    """How crashed workers are started again."""

    max_restarts_per_minute: int = 5
    backoff_start_seconds: float = 1.0
    backoff_max_seconds: float = 30.0
    stable_seconds: float = 60.0
    """A worker that ran this long before it exited starts its backoff afresh."""

    def backoff(self, failures_in_a_row: int) -> float:
        """The wait before a restart: doubling from the start value, capped."""
        doubled = self.backoff_start_seconds * 2.0 ** max(failures_in_a_row - 1, 0)
        return min(doubled, self.backoff_max_seconds)


@dataclass
class Supervised:
    """One worker and its history."""

    spec: WorkerProcess
    process: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    restarts: deque[float] = field(default_factory=deque)
    failures_in_a_row: int = 0
    restart_at: float | None = None


class GaveUp(RuntimeError):
    """A worker crashed more often than the policy allows."""


class Supervisor:
    """Starts the workers, restarts the ones that exit, and stops them all on a signal."""

    def __init__(
        self,
        workers: list[WorkerProcess],
        policy: RestartPolicy | None = None,
        base_env: Mapping[str, str] | None = None,
        stop_grace_seconds: float = STOP_GRACE_SECONDS,
    ) -> None:
        self.workers = [Supervised(spec) for spec in workers]
        self.policy = policy or RestartPolicy()
        self.base_env = dict(os.environ if base_env is None else base_env)
        self.stop_grace_seconds = stop_grace_seconds
        self._stop_signal: int | None = None

    def run(self) -> int:
        """Supervise until a signal (exit 0) or a worker that keeps crashing (exit 1)."""
        previous = {sig: signal.signal(sig, self._request_stop) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            for worker in self.workers:
                self._start(worker)
            while self._stop_signal is None:
                self._check(time.monotonic())
                time.sleep(POLL_SECONDS)
            log.info("stopping %d worker(s) (%s)", len(self.workers), signal.Signals(self._stop_signal).name)
            return 0
        except GaveUp as exc:
            log.error("%s; stopping every worker", exc)
            return EXIT_GAVE_UP
        finally:
            # A second Ctrl-C must not cut the workers' shutdown short.
            for sig in previous:
                signal.signal(sig, signal.SIG_IGN)
            self.stop_all()
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _request_stop(self, signum: int, frame: FrameType | None) -> None:
        self._stop_signal = signum

    def _start(self, worker: Supervised) -> None:
        spec = worker.spec
        worker.process = subprocess.Popen(
            spec.argv,
            env={**self.base_env, **spec.env},
            stdin=subprocess.DEVNULL,
            # A session of its own: a Ctrl-C in the terminal reaches only the supervisor, which
            # then stops every worker in order.
            start_new_session=True,
            preexec_fn=die_with_parent if sys.platform == "linux" else None,
        )
        worker.started_at, worker.restart_at = time.monotonic(), None
        log.info("started %s (pid %d)", spec.describe(), worker.process.pid)

    def _check(self, now: float) -> None:
        for worker in self.workers:
            if worker.restart_at is not None:
                if now >= worker.restart_at:
                    self._start(worker)
                continue
            code = worker.process.poll() if worker.process is not None else None
            if code is not None:
                self._schedule_restart(worker, code, now)

    def _schedule_restart(self, worker: Supervised, code: int, now: float) -> None:
        policy = self.policy
        while worker.restarts and now - worker.restarts[0] > RESTART_WINDOW_SECONDS:
            worker.restarts.popleft()
        if len(worker.restarts) >= policy.max_restarts_per_minute:
            raise GaveUp(
                f"worker {worker.spec.name} exited (code {code}) after {len(worker.restarts)} restarts "
                f"in a minute"
            )
        ran = now - worker.started_at
        worker.failures_in_a_row = 1 if ran >= policy.stable_seconds else worker.failures_in_a_row + 1
        delay = policy.backoff(worker.failures_in_a_row)
        worker.restarts.append(now)
        worker.restart_at = now + delay
        log.warning(
            "worker %s (pid %s) exited with code %d after %.0f s; restarting it in %.1f s",
            worker.spec.name,
            worker.process.pid if worker.process else "?",
            code,
            ran,
            delay,
        )

    def stop_all(self) -> None:
        """SIGTERM every running worker's process group, then SIGKILL those left after the grace."""
        running = [w.process for w in self.workers if w.process is not None and w.process.poll() is None]
        for process in running:
            _signal_group(process, signal.SIGTERM)
        deadline = time.monotonic() + self.stop_grace_seconds
        for process in running:
            try:
                process.wait(max(deadline - time.monotonic(), 0.0))
            except subprocess.TimeoutExpired:
                log.warning(
                    "worker pid %d did not stop within %.0f s; killing it",
                    process.pid,
                    self.stop_grace_seconds,
                )
                _signal_group(process, signal.SIGKILL)
                process.wait()


def _signal_group(process: subprocess.Popen[bytes], signum: signal.Signals) -> None:
    # The worker leads its own session, so its pid is its group id; it is not reaped yet, so the
    # id cannot have been reused.
    with suppress(ProcessLookupError):
        os.killpg(process.pid, signum)
