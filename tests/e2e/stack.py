"""A stack of the tests' own to break: a Redis with AOF that they stop and start, the API, and
worker processes they start with settings of their own and kill, under a key prefix of their
own, with short leases."""

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from redis import Redis

from shared.auth.keys import KeyStore
from shared.redis.keys import RedisKeys
from tests.conftest import stop
from tests.helpers import free_port, tiny_spec, wait_for
from tests.redis_server import RedisServer

FAULT_SETTINGS = {
    "LEASE_SECONDS": "2",
    "WORKER_HEARTBEAT_SECONDS": "0.5",
    "CANCEL_CHECK_SECONDS": "0.1",
    "CANCEL_GRACE_SECONDS": "1.5",
    "MAX_ATTEMPTS": "3",
    "REDIS_RETRY_SECONDS": "60",
    "DISPATCH_DEADLINE_SECONDS": "3",
}
SLOW_SPEC = tiny_spec(dataset={"train_limit": 1200}, training={"epochs": 8, "batch_size": 4})
TERMINAL = ("succeeded", "failed", "cancelled")


@dataclass
class Stack:
    """A Redis, an API and workers of the tests' own, with the means to break them."""

    folder: Path
    env: dict[str, str]
    redis: RedisServer
    api: subprocess.Popen[bytes] | None = None
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)
    names: list[str] = field(default_factory=list)

    def start_worker(self, pool: str = "solo", **settings: str) -> subprocess.Popen[bytes]:
        """A worker with ``settings`` over the stack's, once some worker is live."""
        worker = self.spawn_worker(pool, **settings)
        wait_for(self.cpu_workers, timeout=120, what="the worker")
        return worker

    def spawn_worker(
        self, pool: str = "solo", queues: str = "cpu", **settings: str
    ) -> subprocess.Popen[bytes]:
        """A worker process on ``queues`` with ``settings`` over the stack's, not waited for; its
        log is ``worker_log(name)``, its name the last of ``names``."""
        name = f"fault-{uuid.uuid4().hex[:6]}@localhost"
        command = [sys.executable, "-m", "celery", "-A", "worker.celery_app:app", "worker", "-Q", queues]
        command += ["--pool", pool, "--concurrency", "1", "--hostname", name, "-l", "INFO"]
        with self.worker_log(name).open("wb") as log:
            worker = subprocess.Popen(command, env={**self.env, **settings}, stdout=log, stderr=log)
        self.workers.append(worker)
        self.names.append(name)
        return worker

    def start_api(self) -> None:
        """Start the API (again, on its port) and wait until it serves."""
        port = self.env["API_PORT"]
        command = [sys.executable, "-m", "uvicorn", "api.main:app", "--host", "127.0.0.1", "--port", port]
        self.api = subprocess.Popen(
            command, env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        wait_for(lambda: _serves(self.url), timeout=60, what="the API")

    def kill_api(self) -> None:
        """SIGKILL the API, as a lost host."""
        assert self.api is not None
        self.api.kill()
        self.api.wait()

    def worker_log(self, name: str) -> Path:
        return self.folder / f"{name}.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.env['API_PORT']}"

    @property
    def operator(self) -> dict[str, str]:
        """The header of the operator token (the suite's), which /readyz takes."""
        return {"Authorization": f"Bearer {self.env['OPERATOR_TOKEN']}"}

    def readiness(self) -> dict[str, Any]:
        answer: dict[str, Any] = httpx.get(f"{self.url}/readyz", timeout=2, headers=self.operator).json()
        return answer

    def cpu_workers(self) -> int:
        return int(self.readiness()["workers"].get("cpu", 0))


@contextmanager
def stack_of(
    tmp_path: Path, datasets_dir: Path, primary: RedisServer | None = None, **settings: str
) -> Iterator[Stack]:
    """A stack in ``tmp_path`` with ``settings`` over the faults' own, stopped at the end; on
    ``primary`` (a Redis started already, left running at the end) rather than a Redis of its own."""
    redis, api_port = primary or RedisServer(tmp_path, append_only=True), free_port()
    env = {
        **os.environ,
        **FAULT_SETTINGS,
        "REDIS_URL": redis.url,
        "KEY_PREFIX": f"fault{uuid.uuid4().hex[:6]}",
        "ARTIFACTS_DIR": str(tmp_path / "artifacts"),
        "DATASETS_DIR": str(datasets_dir),
        "API_PORT": str(api_port),
        **settings,
    }
    stack = Stack(tmp_path, env, redis)
    if primary is None:
        redis.start()
    keys = KeyStore(Redis(port=redis.port, decode_responses=True), RedisKeys(env["KEY_PREFIX"]))
    stack.headers = {"Authorization": f"Bearer {keys.create('faults')[1]}"}
    stack.start_api()
    try:
        yield stack
    finally:
        for process in [*stack.workers, stack.api]:
            if process is not None and process.poll() is None:
                stop(process)
        if primary is None:
            redis.stop()


def _serves(url: str) -> bool:
    try:
        return httpx.get(f"{url}/healthz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def submit(stack: Stack, spec: dict[str, Any], idempotency_key: str | None = None) -> str:
    headers = {**stack.headers, **({"Idempotency-Key": idempotency_key} if idempotency_key else {})}
    response = httpx.post(f"{stack.url}/v1/jobs", json=spec, timeout=10, headers=headers)
    assert response.status_code == 202, response.text
    job_id: str = response.json()["id"]
    return job_id


def job(stack: Stack, job_id: str) -> dict[str, Any]:
    found: dict[str, Any] = httpx.get(
        f"{stack.url}/v1/jobs/{job_id}", timeout=10, headers=stack.headers
    ).json()
    return found


def epochs(stack: Stack, job_id: str) -> list[tuple[int, int]]:
    page = httpx.get(f"{stack.url}/v1/jobs/{job_id}/metrics", timeout=10, headers=stack.headers).json()
    return [(record["epoch"], record["attempt"]) for record in page["records"]]


def wait_for_epoch(stack: Stack, job_id: str, epoch: int) -> None:
    wait_for(lambda: len(epochs(stack, job_id)) >= epoch, timeout=120, what=f"epoch {epoch}")


def wait_until_ended(stack: Stack, job_id: str, timeout: float = 180) -> dict[str, Any]:
    return wait_for(lambda: (found := job(stack, job_id))["status"] in TERMINAL and found, timeout=timeout)


def assert_complete(stack: Stack, job_id: str, count: int) -> None:
    assert [number for number, _ in epochs(stack, job_id)] == list(range(1, count + 1))
