"""What every benchmark needs: its own Redis, API and worker processes, the machine's
description, percentiles, a readable table and the JSON results file.

Every server is started here on a free port and stopped when its ``with`` block ends; nothing
touches a Redis the benchmark did not start.
"""

import json
import os
import platform
import secrets
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import httpx

from cli.processes import Child, spawn, terminate
from cli.redis_server import LOCALHOST, free_port, wait_for_server
from cli.stack import api_argv, worker_argv
from cli.worker_layout import celery_argv
from shared.auth.keys import KeyStore
from shared.redis.connection import connect
from shared.redis.keys import RedisKeys
from shared.settings import Settings

REPO_ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = REPO_ROOT / "bench" / "results"
KEY_PREFIX = "kjbench"
# Limits a load test would otherwise hit on purpose: the rate limit and the active-job quota.
# Every uvicorn of a benchmark (ours, the floor) runs alike: one process, no access log lines.
UVICORN_OPTIONS = ["--no-access-log", "--log-level", "warning"]
UNLIMITED = {"RATE_LIMIT_REQUESTS": "100000000", "MAX_ACTIVE_JOBS_PER_TENANT": "100000000"}


def datasets_dir() -> Path:
    """The folder of the MNIST IDX files: ``DATASETS_DIR``, else ``../shared/datasets``."""
    folder = Path(os.environ.get("DATASETS_DIR") or REPO_ROOT.parent / "shared" / "datasets").resolve()
    if not (folder / "mnist").is_dir():
        sys.exit(f"no mnist/ folder under {folder}: set DATASETS_DIR")
    return folder


@dataclass(frozen=True)
class Stack:
    """Servers a benchmark started: Redis, the API, perhaps a worker, and a key to call with."""

    redis_url: str
    api_url: str
    api_key: str
    settings: Settings
    work_dir: Path
    api_pid: int

    def client(self, timeout: float = 30.0) -> httpx.Client:
        """An HTTP client on the API, signed with the stack's key."""
        headers = {"Authorization": f"Bearer {self.api_key}"}
        return httpx.Client(base_url=self.api_url, headers=headers, timeout=timeout)


@contextmanager
def redis_server(folder: Path) -> Iterator[str]:
    """A redis-server of our own on a free port, without persistence; yields its URL."""
    binary = shutil.which("redis-server")
    if binary is None:
        sys.exit("the benchmarks need redis-server on PATH")
    port = free_port()
    argv = [binary, "--bind", LOCALHOST, "--port", str(port), "--save", "", "--appendonly", "no"]
    child = spawn("redis-server", [*argv, "--dir", str(folder)], folder / "redis.log")
    url = f"redis://{LOCALHOST}:{port}/0"
    try:
        wait_for_server(url, child.process.pid, child.running)
        yield url
    finally:
        terminate(child)


@lru_cache
def operator_token() -> str:
    """This run's operator token, which the API's /readyz takes (OPERATOR_TOKEN)."""
    return secrets.token_urlsafe(32)


def service_env(redis_url: str, work_dir: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of the API and worker processes: our Redis, prefix, data and folders."""
    env = dict(
        os.environ,
        REDIS_URL=redis_url,
        KEY_PREFIX=KEY_PREFIX,
        DATASETS_DIR=str(datasets_dir()),
        ARTIFACTS_DIR=str(work_dir / "artifacts"),
        LOG_LEVEL="WARNING",
        PYTHONPATH=str(REPO_ROOT),
        OPERATOR_TOKEN=operator_token(),
        **UNLIMITED,
    )
    env.update(extra or {})
    return env


@contextmanager
def stack(*, worker: bool, extra_env: dict[str, str] | None = None, workers: int = 1) -> Iterator[Stack]:
    """Redis, the API (one uvicorn process) and, with ``worker``, ``workers`` warm solo workers on
    cpu (one by default), each under a node name of its own."""
    with ExitStack() as exits:
        work_dir = Path(exits.enter_context(tempfile.TemporaryDirectory(prefix="kjobs-bench-")))
        redis_url = exits.enter_context(redis_server(work_dir))
        env = service_env(redis_url, work_dir, extra_env)
        settings = Settings(redis_url=redis_url, key_prefix=KEY_PREFIX)
        _, api_key = KeyStore(connect(settings), RedisKeys(KEY_PREFIX)).create("bench", "benchmarks")
        port = free_port()
        api = spawn("API", [*api_argv(LOCALHOST, port), *UVICORN_OPTIONS], work_dir / "api.log", env)
        exits.callback(terminate, api)
        api_url = f"http://{LOCALHOST}:{port}"
        wait_until(lambda: _healthy(api_url), 60, "the API to start", api)
        if worker:
            children = [_start_worker(number, work_dir, env) for number in range(1, workers + 1)]
            for child in children:
                exits.callback(terminate, child, 60.0)
            for child in children:
                wait_until(lambda: _workers(api_url) >= workers, 180, "the workers to start", child)
        yield Stack(redis_url, api_url, api_key, settings, work_dir, api.process.pid)


@contextmanager
def server_process(
    name: str, argv: Sequence[str], url: str, log_path: Path, env: dict[str, str]
) -> Iterator[Child]:
    """Any HTTP server process, waited for until ``url`` answers, stopped afterwards."""
    child = spawn(name, argv, log_path, env)
    try:
        wait_until(lambda: _answers(url), 120, f"the {name} to start", child)
        yield child
    finally:
        terminate(child)


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of a process and its children so far."""
    import psutil  # type: ignore[import-untyped]

    process = psutil.Process(pid)
    total = 0.0
    for member in (process, *process.children(recursive=True)):
        times = member.cpu_times()
        total += times.user + times.system
    return total


def wait_until(ready: Any, timeout: float, what: str, child: Child | None = None) -> None:
    """Poll ``ready()`` until true; exit with the child's log when it died or time ran out."""
    deadline = time.monotonic() + timeout
    while not ready():
        if (child is not None and not child.running()) or time.monotonic() > deadline:
            tail = child.log_path.read_text(errors="replace")[-3000:] if child else ""
            sys.exit(f"gave up waiting for {what}\n{tail}")
        time.sleep(0.2)


def _answers(url: str) -> bool:
    try:
        httpx.get(url, timeout=1.0)
    except httpx.HTTPError:
        return False
    return True


def _healthy(api_url: str) -> bool:
    try:
        return httpx.get(f"{api_url}/healthz", timeout=1.0).status_code == 200
    except httpx.HTTPError:
        return False


def _start_worker(number: int, work_dir: Path, env: dict[str, str]) -> Child:
    """The ``number``-th solo worker on cpu: the first as ``kjobs up`` names it, others apart."""
    if number == 1:
        return spawn("worker", worker_argv("cpu"), work_dir / "worker.log", env)
    argv = celery_argv("cpu", f"local{number}@%h")
    return spawn(f"worker {number}", argv, work_dir / f"worker-{number}.log", env)


def _workers(api_url: str) -> int:
    """Workers on the cpu queue that /readyz counts; 0 when it cannot tell."""
    headers = {"Authorization": f"Bearer {operator_token()}"}  # /readyz takes only the operator token
    try:
        readiness = httpx.get(f"{api_url}/readyz", headers=headers, timeout=1.0).json()
    except (httpx.HTTPError, ValueError):
        return 0
    return int(readiness.get("workers", {}).get("cpu", 0))


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100) of ``values``, interpolated between the nearest ranks."""
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    rank = (len(ordered) - 1) * q / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def summary_ms(seconds: Sequence[float]) -> dict[str, float]:
    """p50, p99, mean and max of durations given in seconds, in milliseconds."""
    return {
        "n": len(seconds),
        "p50_ms": round(percentile(seconds, 50) * 1000, 2),
        "p99_ms": round(percentile(seconds, 99) * 1000, 2),
        "mean_ms": round(statistics.fmean(seconds) * 1000, 2),
        "max_ms": round(max(seconds) * 1000, 2),
    }


def machine() -> dict[str, Any]:
    """The machine and the versions the figures were taken with."""
    info: dict[str, Any] = {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "python": platform.python_version(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }
    for package in ("tensorflow", "keras", "fastapi", "uvicorn", "redis", "mlflow"):
        info[package] = _version(package)
    return info


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def _version(package: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return None


def write_results(name: str, figures: dict[str, Any]) -> Path:
    """Save a benchmark's figures, with the machine they were taken on, as bench/results/NAME.json."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{name}.json"
    document = {"benchmark": name, "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "machine": machine()}
    path.write_text(json.dumps({**document, **figures}, indent=2) + "\n")
    return path


def print_table(title: str, header: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """A Markdown table, readable as it is in a terminal."""
    cells = [[_cell(value) for value in row] for row in rows]
    widths = [max(len(str(h)), *(len(row[i]) for row in cells)) for i, h in enumerate(header)]
    print(f"\n{title}\n")
    print("| " + " | ".join(str(h).ljust(w) for h, w in zip(header, widths, strict=True)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in cells:
        print("| " + " | ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)) + " |")
    print(flush=True)


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3f}" if abs(value) < 10 else f"{value:.1f}"
    return str(value)
