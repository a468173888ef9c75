"""A worker refuses an evicting Redis before it takes anything from it, unless told otherwise:
real worker processes on redis-servers of the tests' own."""

import json
import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from cli.worker_layout import celery_argv
from shared.ops.registry import WorkerRegistry
from shared.redis.connection import connect
from shared.redis.keys import RedisKeys
from shared.settings import Settings
from tests.conftest import stop
from tests.helpers import wait_for
from tests.redis_server import RedisServer
from worker.redis_gate import EXIT_REFUSED

EVICTING = ("--maxmemory-policy", "allkeys-lru", "--maxmemory", "64mb")


@pytest.fixture
def evicting(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server that evicts any key at its maxmemory."""
    server = RedisServer(tmp_path, options=EVICTING)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def start_worker(redis: RedisServer, log_path: Path, **settings: str) -> tuple[subprocess.Popen[bytes], str]:
    """A solo worker on ``redis`` under a key prefix of its own; its log goes to ``log_path``."""
    prefix = f"gate{uuid.uuid4().hex[:6]}"
    env = {**os.environ, "REDIS_URL": redis.url, "KEY_PREFIX": prefix, **settings}
    with log_path.open("wb") as log:
        process = subprocess.Popen(celery_argv("cpu", f"{prefix}@localhost"), env=env, stdout=log, stderr=log)
    return process, prefix


def messages(log_path: Path) -> list[tuple[str, str]]:
    """The level and message of each JSON line of a worker's log."""
    lines = (json.loads(line) for line in log_path.read_text().splitlines() if line.startswith("{"))
    return [(line["level"], line["message"]) for line in lines]


def test_a_worker_refuses_an_evicting_redis_and_takes_nothing_from_it(
    evicting: RedisServer, tmp_path: Path
) -> None:
    process, _ = start_worker(evicting, tmp_path / "worker.log")
    try:
        code = process.wait(timeout=60)
    finally:
        stop(process)
    assert code == EXIT_REFUSED
    refusals = [message for level, message in messages(tmp_path / "worker.log") if level == "critical"]
    assert len(refusals) == 1, refusals
    assert "maxmemory-policy is allkeys-lru" in refusals[0]
    assert "REDIS_ALLOW_EVICTION=true" in refusals[0]
    with connect(Settings(redis_url=evicting.url)) as redis:
        assert redis.dbsize() == 0, "it never reached the broker: no queue, no registration"


def test_with_redis_allow_eviction_a_worker_starts_on_it_and_says_so(
    evicting: RedisServer, tmp_path: Path
) -> None:
    process, prefix = start_worker(evicting, tmp_path / "worker.log", REDIS_ALLOW_EVICTION="true")
    registry = WorkerRegistry(connect(Settings(redis_url=evicting.url)), RedisKeys(prefix))
    try:
        wait_for(lambda: registry.live() or process.poll() is not None, timeout=120, what="the worker")
        assert [worker.name for worker in registry.live()] == [f"{prefix}@localhost"]
    finally:
        stop(process)
    logged = messages(tmp_path / "worker.log")
    assert (
        "warning",
        "REDIS_ALLOW_EVICTION is true: starting on a Redis whose maxmemory-policy is allkeys-lru",
    ) in logged
    assert not any(level == "critical" for level, _ in logged)
