"""Session fixtures: a real Redis, a real Celery worker process, and the API on a test client.

The suite starts its own ``redis-server`` on a free port unless ``REDIS_URL`` is set; either
way every key it writes is under a key prefix of its own, and only those keys are deleted.
"""

import os
import secrets
import subprocess
import sys
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from redis import Redis

from cli.worker_layout import celery_argv
from shared.auth.keys import KeyStore
from shared.jobs.store import JobStore
from shared.ops.registry import WorkerRegistry
from shared.redis.connection import connect
from shared.redis.keys import RedisKeys
from shared.settings import Settings, get_settings
from tests.helpers import free_port, wait_for, write_learnable_dataset
from tests.redis_server import RedisServer
from tests.s3_server import S3Server

GIVEN_REDIS_URL = os.environ.get("REDIS_URL")
REAL_DATASETS_DIR = os.environ.get("DATASETS_DIR")


def delete_prefixed(redis: Redis, prefix: str) -> None:
    """Delete every key under ``prefix`` (and nothing else)."""
    for key in redis.scan_iter(match=f"{prefix}:*", count=1000):
        redis.delete(key)


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``REDIS_URL`` when given, else a redis-server of the suite's own on a free port."""
    if GIVEN_REDIS_URL:
        yield GIVEN_REDIS_URL
        return
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    try:
        yield server.url
    finally:
        server.stop()


def stop(process: subprocess.Popen[bytes]) -> None:
    """Terminate a child process, killing it if it does not exit in time."""
    process.terminate()
    try:
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """An S3 server of the suite's own, its variables set for this process (for tests that open
    an ``s3://`` store here) and given to the processes a test starts."""
    server = S3Server(tmp_path_factory.mktemp("s3"))
    server.start()
    saved = {name: os.environ.get(name) for name in server.env}
    os.environ.update(server.env)
    try:
        yield server
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        server.stop()


@pytest.fixture(scope="session")
def key_prefix() -> str:
    """This session's key prefix: nothing outside it is read, written or deleted."""
    return f"kjtest{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="session")
def datasets_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A datasets folder with a small learnable ``mnist`` and a corrupt ``fashion-mnist``."""
    folder = tmp_path_factory.mktemp("datasets")
    write_learnable_dataset(folder / "mnist")
    corrupt = folder / "fashion-mnist"
    write_learnable_dataset(corrupt, n_train=100, n_test=20)
    (corrupt / "train-images-idx3-ubyte.gz").write_bytes(b"\x1f\x8b not really gzip")
    return folder


@pytest.fixture(scope="session", autouse=True)
def settings_env(
    redis_url: str, key_prefix: str, datasets_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Settings]:
    """The environment every process of the suite reads its settings from."""
    os.environ.update(
        REDIS_URL=redis_url,
        KEY_PREFIX=key_prefix,
        DATASETS_DIR=str(datasets_dir),
        ARTIFACTS_DIR=str(tmp_path_factory.mktemp("artifacts")),
        CANCEL_CHECK_SECONDS="0.1",
        # /metrics and /readyz open only to this token (the ``operator`` client sends it).
        OPERATOR_TOKEN=secrets.token_urlsafe(32),
        WORKER_HEARTBEAT_SECONDS="1",
        # The suite's tenants hold many jobs that never run (on the gpu queue): the API and the
        # workers (which start a search's trials) must count the same, high quota.
        MAX_ACTIVE_JOBS_PER_TENANT="100000",
        # The webhook tests' receivers listen on loopback; retries come quickly.
        WEBHOOK_ALLOW_PRIVATE="true",
        WEBHOOK_RETRY_SECONDS="0.5",
        WEBHOOK_POLL_SECONDS="0.2",
    )
    get_settings.cache_clear()
    settings = get_settings()
    yield settings
    delete_prefixed(connect(settings), key_prefix)


@pytest.fixture
def store(settings_env: Settings) -> Iterator[JobStore]:
    """A store under a key prefix of this test's own, emptied afterwards."""
    prefix = f"{settings_env.key_prefix}-{uuid.uuid4().hex[:6]}"
    redis = connect(settings_env)
    yield JobStore(redis, RedisKeys(prefix))
    delete_prefixed(redis, prefix)
    redis.connection_pool.disconnect()  # its sockets closed now, not whenever it is collected


@pytest.fixture(scope="session")
def worker_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the session's worker writes its log (JSON lines)."""
    return tmp_path_factory.mktemp("logs") / "worker.log"


@pytest.fixture(scope="session")
def worker(settings_env: Settings, worker_log: Path) -> Iterator[str]:
    """A real Celery worker process on the ``cpu`` queue (the ``gpu`` queue has none)."""
    name = f"test-{settings_env.key_prefix}@localhost"
    log_path = worker_log
    with log_path.open("wb") as log:
        process = subprocess.Popen(celery_argv("cpu", name), stdout=log, stderr=log)
    registry = WorkerRegistry(connect(settings_env), RedisKeys(settings_env.key_prefix))
    try:
        wait_for(lambda: any(w.name == name for w in registry.live()), timeout=120, what="the worker")
        yield name
    finally:
        stop(process)
        if os.environ.get("KJOBS_TEST_SHOW_WORKER_LOG"):
            sys.stderr.write(log_path.read_text())


@contextmanager
def running_api(env: dict[str, str], log_path: Path, options: Sequence[str] = ()) -> Iterator[str]:
    """A real uvicorn serving the API on a free port with ``env`` (and uvicorn's ``options``);
    yields its URL."""
    port = free_port()
    command = [sys.executable, "-m", "uvicorn", "api.main:app", "--host", "127.0.0.1", "--port", str(port)]
    command += options
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, env=env, stdout=log, stderr=log)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: _serves(url), timeout=60, what="the API to start")
        yield url
    finally:
        stop(process)


@pytest.fixture(scope="session")
def api_url(settings_env: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The API with the suite's settings (limits high enough for the suite's own traffic)."""
    env = {
        **os.environ,
        "RATE_LIMIT_REQUESTS": "1000000",
        "MAX_UPLOAD_BYTES": "20000000",
        "MAX_EXPANDED_BYTES": "50000000",
    }
    with running_api(env, tmp_path_factory.mktemp("logs") / "api.log") as url:
        yield url


def _serves(url: str) -> bool:
    try:
        return httpx.get(f"{url}/healthz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def new_api_key(settings: Settings, tenant: str) -> str:
    """A fresh API key of ``tenant``, stored where the suite's API looks for keys."""
    _, key = KeyStore(connect(settings), RedisKeys(settings.key_prefix)).create(tenant, "tests")
    return key


@pytest.fixture(scope="session")
def client(api_url: str, settings_env: Settings) -> Iterator[httpx.Client]:
    """An HTTP client on the running API, with an API key of the tenant ``tests``."""
    headers = {"Authorization": f"Bearer {new_api_key(settings_env, 'tests')}"}
    with httpx.Client(base_url=api_url, timeout=30, headers=headers) as http:
        yield http


def operator_headers(settings: Settings) -> dict[str, str]:
    """The ``Authorization`` header of the operator token the suite's APIs take."""
    assert settings.operator_token is not None
    return {"Authorization": f"Bearer {settings.operator_token.get_secret_value()}"}


@pytest.fixture(scope="session")
def operator(api_url: str, settings_env: Settings) -> Iterator[httpx.Client]:
    """An HTTP client on the running API with the operator token, for /metrics and /readyz."""
    with httpx.Client(base_url=api_url, timeout=30, headers=operator_headers(settings_env)) as http:
        yield http


@pytest.fixture
def other_client(api_url: str, settings_env: Settings) -> Iterator[httpx.Client]:
    """A client of another tenant, made for this test."""
    headers = {"Authorization": f"Bearer {new_api_key(settings_env, f'other-{uuid.uuid4().hex[:8]}')}"}
    with httpx.Client(base_url=api_url, timeout=30, headers=headers) as http:
        yield http
