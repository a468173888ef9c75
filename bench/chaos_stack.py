"""The soak's stack, built to be broken: a redis-server with its append-only file, the API and
Celery workers, each of which can be killed outright and started again on the same port, the
same files and the same key prefix.

Every process is started with ``cli.processes.spawn`` (a session of its own, ended with us if
we are killed) and logs to a file of its own under the work folder, one per incarnation.
"""

import os
import secrets
import shutil
import signal
import sys
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from bench.harness import UVICORN_OPTIONS, operator_token, service_env, wait_until
from cli.processes import Child, spawn, terminate
from cli.redis_server import LOCALHOST, free_port, wait_for_server
from cli.stack import api_argv
from cli.worker_layout import celery_argv
from shared.auth.keys import KeyStore
from shared.redis.connection import connect
from shared.redis.keys import RedisKeys
from shared.settings import Settings

# A worker loads Keras before it reports ready: tens of seconds on two busy cores.
WORKER_START_SECONDS = 180.0
API_START_SECONDS = 60.0


@dataclass
class ChaosStack:
    """Redis (AOF, fsync every second), one API process and N solo workers, under ``folder``."""

    folder: Path
    settings_env: dict[str, str]
    key_prefix: str = field(default_factory=lambda: f"chaos{secrets.token_hex(3)}")
    redis_port: int = field(default_factory=free_port)
    api_port: int = field(default_factory=free_port)
    redis: Child | None = None
    api: Child | None = None
    workers: list[Child] = field(default_factory=list)
    started: dict[str, int] = field(default_factory=dict)  # incarnations per role, for names

    @property
    def redis_url(self) -> str:
        """The URL of our Redis, the same across its restarts."""
        return f"redis://{LOCALHOST}:{self.redis_port}/0"

    @property
    def api_url(self) -> str:
        """The URL of our API, the same across its restarts."""
        return f"http://{LOCALHOST}:{self.api_port}"

    def env(self) -> dict[str, str]:
        """The environment of the API and the workers: the bench's, our prefix and settings."""
        extra = {"KEY_PREFIX": self.key_prefix, **self.settings_env}
        return service_env(self.redis_url, self.folder, extra)

    def create_key(self) -> str:
        """A new API key of the tenant ``chaos``, written into our Redis."""
        settings = Settings(redis_url=self.redis_url, key_prefix=self.key_prefix)
        client = connect(settings)
        try:
            return KeyStore(client, RedisKeys(self.key_prefix)).create("chaos", "chaos soak")[1]
        finally:
            client.close()

    def _log(self, role: str) -> Path:
        self.started[role] = self.started.get(role, 0) + 1
        return self.folder / "logs" / f"{role}-{self.started[role]}.log"

    def start_redis(self) -> None:
        """Start redis-server on our port with its append-only file (again, after a kill)."""
        binary = shutil.which("redis-server")
        if binary is None:
            sys.exit("the soak needs redis-server on PATH")
        data = self.folder / "redis"
        data.mkdir(parents=True, exist_ok=True)
        argv = [binary, "--bind", LOCALHOST, "--port", str(self.redis_port), "--dir", str(data)]
        argv += ["--save", "", "--appendonly", "yes", "--appendfsync", "everysec"]
        self.redis = spawn("redis-server", argv, self._log("redis"))
        wait_for_server(self.redis_url, self.redis.process.pid, self.redis.running)

    def start_api(self) -> None:
        """Start one uvicorn process of the API on our port and wait until it answers."""
        argv = [*api_argv(LOCALHOST, self.api_port), *UVICORN_OPTIONS]
        self.api = spawn("API", argv, self._log("api"), self.env())
        wait_until(lambda: _answers(f"{self.api_url}/healthz"), API_START_SECONDS, "the API", self.api)

    def start_worker(self) -> Child:
        """Start one solo worker on the cpu queue under a node name never used before."""
        log_path = self._log("worker")
        name = f"{log_path.stem}@chaos"  # a killed worker's name stays in the registry a while
        child = spawn("worker", celery_argv("cpu", name, "INFO"), log_path, self.env())
        self.workers.append(child)
        return child

    def wait_for_workers(self, count: int) -> None:
        """Wait until ``count`` workers report themselves ready on the cpu queue."""
        wait_until(lambda: self.live_workers() >= count, WORKER_START_SECONDS, f"{count} workers")

    def live_workers(self) -> int:
        """Workers on the cpu queue that /readyz counts; 0 when it cannot tell."""
        headers = {"Authorization": f"Bearer {operator_token()}"}
        try:
            answer = httpx.get(f"{self.api_url}/readyz", headers=headers, timeout=2.0).json()
        except (httpx.HTTPError, ValueError):
            return 0
        return int(answer.get("workers", {}).get("cpu", 0))

    def kill(self, child: Child | None) -> None:
        """SIGKILL a process outright (no shutdown of any kind) and reap it."""
        if child is None or not child.running():
            return
        os.killpg(child.process.pid, signal.SIGKILL)
        child.process.wait()

    def kill_worker(self, child: Child) -> None:
        """SIGKILL one worker; it stays out of ``workers``."""
        self.kill(child)
        self.workers.remove(child)

    def worker_logs(self) -> list[Path]:
        """Every worker's log file, killed ones' included."""
        return sorted((self.folder / "logs").glob("worker-*.log"))

    def close(self) -> None:
        """Stop everything we started: workers and the API first, Redis last."""
        for child in [*self.workers, self.api]:
            if child is not None:
                terminate(child, 15.0)
        if self.redis is not None:
            terminate(self.redis)


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1.0).status_code == 200
    except httpx.HTTPError:
        return False
