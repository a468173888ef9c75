"""A local stack: Redis, one Celery worker and the API, started together and stopped together."""

import fcntl
import logging
import os
import secrets
import socket
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from api.schemas import Readiness
from cli.admin import write_private
from cli.processes import Child, signals_deferred, spawn, terminate
from cli.redis_server import RedisHandle, resolve_redis
from cli.worker_layout import celery_argv

log = logging.getLogger(__name__)

DEFAULT_QUEUES = "cpu,gpu"
READY_TIMEOUT_SECONDS = 120.0
POLL_SECONDS = 0.5
# On SIGTERM a Celery worker finishes the job in hand first; a short job may end in that time.
WORKER_GRACE_SECONDS = 30.0


class StackError(RuntimeError):
    """The local stack could not start, or one of its processes stopped."""


@dataclass(frozen=True)
class StatePaths:
    """The folder of a local stack's state: Redis data, logs, model artifacts, an API key and the
    operator token."""

    root: Path

    @property
    def redis(self) -> Path:
        """Redis's data folder."""
        return self.root / "redis"

    @property
    def logs(self) -> Path:
        """The processes' log files."""
        return self.root / "logs"

    @property
    def artifacts(self) -> Path:
        """The default ARTIFACTS_DIR."""
        return self.root / "artifacts"

    @property
    def api_key(self) -> Path:
        """The API key ``kjobs up`` issued last (mode 0600)."""
        return self.root / "api-key"

    @property
    def operator_token(self) -> Path:
        """The operator token of the running stack, for /metrics and /readyz (mode 0600)."""
        return self.root / "operator-token"


def state_paths() -> StatePaths:
    """The state folder ``.kjobs`` under the current directory."""
    return StatePaths(Path.cwd().resolve() / ".kjobs")


@dataclass(frozen=True)
class Stack:
    """A running local stack."""

    redis: RedisHandle
    worker: Child
    api: Child
    api_url: str
    artifacts_dir: str
    log_files: tuple[Path, ...]
    operator_token: str

    def check_running(self) -> None:
        """Raise StackError if the worker or the API has exited."""
        for child in (self.worker, self.api):
            if not child.running():
                code = child.process.returncode
                raise StackError(f"the {child.name} exited with code {code}; see {child.log_path}")

    def wait(self) -> None:
        """Block until a process of the stack exits (then raise) or the CLI is interrupted."""
        while True:
            self.check_running()
            time.sleep(1.0)


def worker_argv(queues: str = DEFAULT_QUEUES) -> list[str]:
    """The command line of a solo-pool worker on ``queues``."""
    return celery_argv(queues, "local@%h")


def api_argv(host: str, port: int) -> list[str]:
    """The command line of the API server."""
    return [sys.executable, "-m", "uvicorn", "api.main:app", "--host", host, "--port", str(port)]


def client_url(host: str, port: int) -> str:
    """The URL a local client reaches an API bound to ``host`` at."""
    connect_host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)
    if ":" in connect_host:
        connect_host = f"[{connect_host}]"
    return f"http://{connect_host}:{port}"


def ensure_port_free(host: str, port: int) -> None:
    """Fail early if something listens on the API's port, rather than polling someone else's API."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        # As uvicorn does, so a port left in TIME_WAIT by a previous run counts as free.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as error:
            raise StackError(f"cannot listen on {host}:{port}: {error.strerror}") from None


def child_env(redis_url: str, artifacts_dir: Path) -> dict[str, str]:
    """This process's environment with the stack's Redis and, unless set, its artifacts folder."""
    env = dict(os.environ, REDIS_URL=redis_url)
    env.setdefault("ARTIFACTS_DIR", str(artifacts_dir))
    # A local stack is one user's: webhooks may reach receivers on this machine and its network.
    env.setdefault("WEBHOOK_ALLOW_PRIVATE", "true")
    if not env.get("OPERATOR_TOKEN"):  # one of this run's own, for /metrics and /readyz
        env["OPERATOR_TOKEN"] = secrets.token_urlsafe(32)
    return env


@contextmanager
def state_lock(paths: StatePaths) -> Iterator[None]:
    """Hold the state folder, so two stacks never share its Redis data and log files."""
    paths.root.mkdir(parents=True, exist_ok=True)
    with (paths.root / "lock").open("w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise StackError(f"another kjobs up is using {paths.root}; stop it or run elsewhere") from None
        yield


@contextmanager
def local_stack(host: str, port: int, paths: StatePaths) -> Iterator[Stack]:
    """Start Redis, a worker and the API, wait until they are ready, and stop them all on exit."""
    ensure_port_free(host, port)
    exits = ExitStack()
    try:
        exits.enter_context(state_lock(paths))
        redis = resolve_redis(paths.redis, paths.logs)
        exits.callback(redis.stop)
        paths.artifacts.mkdir(parents=True, exist_ok=True)
        env = child_env(redis.url, paths.artifacts)
        write_private(paths.operator_token, env["OPERATOR_TOKEN"] + "\n")
        worker = spawn("worker", worker_argv(), paths.logs / "worker.log", env)
        exits.callback(terminate, worker, WORKER_GRACE_SECONDS)
        api = spawn("API", api_argv(host, port), paths.logs / "api.log", env)
        exits.callback(terminate, api)
        logs = (worker.log_path, api.log_path) + ((paths.logs / "redis.log",) if redis.managed else ())
        url, token = client_url(host, port), env["OPERATOR_TOKEN"]
        stack = Stack(redis, worker, api, url, env["ARTIFACTS_DIR"], logs, token)
        wait_ready(stack)
        yield stack
    finally:
        log.info("stopping the local stack")
        with signals_deferred():
            exits.close()


def wait_ready(stack: Stack, timeout_seconds: float = READY_TIMEOUT_SECONDS) -> None:
    """Wait until the API's /readyz is ready and counts a worker on the cpu queue."""
    deadline = time.monotonic() + timeout_seconds
    operator = {"Authorization": f"Bearer {stack.operator_token}"}
    with httpx.Client(base_url=stack.api_url, timeout=2.0, headers=operator) as client:
        while not _ready(client):
            stack.check_running()
            if time.monotonic() > deadline:
                logs = ", ".join(str(path) for path in stack.log_files)
                raise StackError(
                    f"no ready API with a worker on the cpu queue after {timeout_seconds:.0f} s; see {logs}"
                )
            time.sleep(POLL_SECONDS)


def _ready(client: httpx.Client) -> bool:
    try:
        response = client.get("/readyz")
    except httpx.TransportError:
        return False
    if response.status_code != 200:
        return False
    readiness = Readiness.model_validate_json(response.text)
    return readiness.ready and readiness.workers.get("cpu", 0) > 0
