"""A worker's heartbeat: a daemon thread that keeps its registry entry alive."""

import logging
import os
import threading
import time

from shared.registry import WorkerInfo, WorkerRegistry

log = logging.getLogger(__name__)


class Heartbeat:
    """Reports the worker alive every ``interval`` seconds; a missed beat is logged, not fatal."""

    def __init__(self, registry: WorkerRegistry, name: str, queues: list[str], interval: float) -> None:
        self.registry, self.interval = registry, interval
        self.info = WorkerInfo(
            name=name,
            queues=queues,
            pid=os.getpid(),
            device="cpu",
            started_at=time.time(),
            seen_at=time.time(),
        )
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="kjobs-heartbeat", daemon=True)

    def start(self) -> None:
        """Beat now, then every interval in the background."""
        self.beat()
        self._thread.start()

    def stop(self) -> None:
        """Stop beating and leave the registry."""
        self._stopped.set()
        self._thread.join(timeout=self.interval)
        try:
            self.registry.leave(self.info.name)
        except Exception as exc:
            log.warning("could not leave the worker registry: %s", exc)

    def set_job(self, job_id: str | None) -> None:
        """Report the job in hand, now."""
        self.info = self.info.model_copy(update={"current_job": job_id})
        self.beat()

    def set_device(self, device: str | None) -> None:
        """Report what this worker trains on, when known."""
        if device is not None:
            self.info = self.info.model_copy(update={"device": device})

    def beat(self) -> None:
        """Report alive for three intervals."""
        self.info = self.info.model_copy(update={"seen_at": time.time()})
        try:
            self.registry.beat(self.info, ttl_seconds=3 * self.interval)
        except Exception as exc:
            log.warning("worker heartbeat failed: %s", exc)

    def _run(self) -> None:
        while not self._stopped.wait(self.interval):
            self.beat()
