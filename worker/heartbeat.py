"""A worker's heartbeat: a daemon thread that keeps its registry entry alive."""

import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Sequence

from shared.models.devices import DeviceInfo
from shared.ops.registry import WorkerInfo, WorkerRegistry

log = logging.getLogger(__name__)


class Heartbeat:
    """Reports the worker alive every ``interval`` seconds, then runs ``chores`` (the reaper);
    a missed beat or a failed chore is logged, not fatal."""

    def __init__(
        self,
        registry: WorkerRegistry,
        name: str,
        queues: list[str],
        interval: float,
        chores: Sequence[Callable[[], None]] = (),
    ) -> None:
        self.registry, self.interval, self.chores = registry, interval, chores
        self.name, self.queues, self.started_at = name, queues, time.time()
        self.host = socket.gethostname()
        self.backend: str | None = None
        self.device: DeviceInfo | None = None
        self.current_job: str | None = None
        self.slot_memory_mb: int | None = None
        self._lock = threading.Lock()  # the task thread and the beat thread both beat
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
            self.registry.leave(self.name)
        except Exception as exc:
            log.warning("could not leave the worker registry: %s", exc)

    def set_job(self, job_id: str | None) -> None:
        """Report the job in hand, now; with none, nudge the dispatcher, which counts this worker's
        slot as taken until its heartbeat says otherwise."""
        with self._lock:
            self.current_job = job_id
        self.beat()
        if job_id is None:
            try:
                self.registry.came_free()
            except Exception as exc:  # the dispatcher's next look (within a second) finds it
                log.warning("could not nudge the dispatcher: %s", exc)

    def set_device(self, backend: str, device: DeviceInfo) -> None:
        """Report the Keras backend and the device this worker trains on."""
        with self._lock:
            self.backend, self.device = backend, device

    def info(self) -> WorkerInfo:
        """What the next beat reports."""
        with self._lock:
            return WorkerInfo(
                name=self.name,
                queues=self.queues,
                host=self.host,
                pid=os.getpid(),
                backend=self.backend,
                device=self.device,
                current_job=self.current_job,
                slot_memory_mb=self.slot_memory_mb,
                started_at=self.started_at,
                seen_at=time.time(),
            )

    def beat(self) -> None:
        """Report alive for three intervals."""
        try:
            self.registry.beat(self.info(), ttl_seconds=3 * self.interval)
        except Exception as exc:
            log.warning("worker heartbeat failed: %s", exc)

    def _run(self) -> None:
        while not self._stopped.wait(self.interval):
            self.beat()
            for chore in self.chores:
                try:
                    chore()
                except Exception as exc:
                    log.warning(
                        "%s failed: %s: %s", getattr(chore, "__qualname__", chore), type(exc).__name__, exc
                    )
