"""API under load: metrics polls and job submissions at rising concurrency, beside an MLflow
tracking server serving the same history and a bare Starlette floor reading the same Redis list.

The load generator is wrk (``apt-get install wrk``) with ``bench/wrk/report.lua``. Ours and the
floor run as one uvicorn process each; MLflow as one server worker with a SQLite store.

The polls of ours and of the floor, whose ratios are the targets, are run ``--rounds`` times
each, alternated at each concurrency (ours, floor, ours, floor...) after a short run of each
that is not counted, and each figure reported is the median of its rounds: on a shared machine
one run's throughput or p99 moves by tens of percent with whatever else runs, and alternating
spreads that over both alike. After every run the benchmark waits for the server it loaded to
finish what wrk left in flight, so that no run shares the machine with the last one's backlog.

With ``--before REF`` the API as it was at git commit REF (checked out in a temporary folder)
runs too, against the same Redis and job, and its polls are alternated with ours and the
floor's in the same rounds: figures before and after a change, taken in one run.

    .venv/bin/python -m bench.api_load [--seconds 6] [--connections 1,16,64,256] [--rounds 3] [--before REF]
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx

from bench.harness import (
    KEY_PREFIX,
    REPO_ROOT,
    UVICORN_OPTIONS,
    Stack,
    cpu_seconds,
    print_table,
    server_process,
    service_env,
    stack,
    write_results,
)
from bench.seed import epoch_records, seed_jobs
from cli.redis_server import LOCALHOST, free_port
from cli.stack import api_argv
from shared.jobs.store import JobStore
from shared.models.jobs import utc_now
from shared.redis.connection import connect

EPOCHS = 100
LUA = REPO_ROOT / "bench" / "wrk" / "report.lua"
SUBMISSION = {"preset": "baseline", "training": {"epochs": 1}, "resources": {"queue": "gpu"}}
# The targets run for several rounds: the ones the ratios compare.
ROUNDED = ("ours poll (all 100)", "floor (all 100)", "ours poll (last 1)", "floor (last 1)")
BEFORE = ("before poll (all 100)", "before poll (last 1)")
METRIC_KEYS = ("loss", "accuracy", "val_loss", "val_accuracy", "data_loss", "val_data_loss")


def wrk(url: str, connections: int, seconds: int, env: dict[str, str], server_pid: int) -> dict[str, Any]:
    """One wrk run against ``url``; its figures, with requests per second and the server's CPU
    time per request (which a busy machine disturbs far less than throughput)."""
    binary = shutil.which("wrk")
    if binary is None:
        sys.exit("the API load benchmark needs wrk on PATH (apt-get install -y wrk)")
    threads = min(2, connections)
    argv = [
        binary,
        f"-t{threads}",
        f"-c{connections}",
        f"-d{seconds}s",
        "--timeout",
        "10s",
        "-s",
        str(LUA),
        url,
    ]
    cpu_before = cpu_seconds(server_pid)
    output = subprocess.run(
        argv, env={**os.environ, **env}, capture_output=True, text=True, check=True
    ).stdout
    line = next(line for line in output.splitlines() if line.startswith("WRK_JSON "))
    figures: dict[str, Any] = json.loads(line.removeprefix("WRK_JSON "))
    figures["rps"] = round(figures["requests"] / figures["seconds"], 1)
    figures["cpu_us_per_request"] = round((cpu_seconds(server_pid) - cpu_before) / figures["requests"] * 1e6)
    settle(server_pid)
    return figures


def settle(pid: int, idle_share: float = 0.05, limit_seconds: float = 60.0) -> None:
    """Wait until the server has finished the requests wrk left in flight when it stopped (a
    slow target goes on working through its backlog for seconds), so that the next run does
    not share the machine with it."""
    deadline = time.monotonic() + limit_seconds
    while time.monotonic() < deadline:
        before = cpu_seconds(pid)
        time.sleep(0.2)
        if cpu_seconds(pid) - before < 0.2 * idle_share:
            return


def median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Each figure's median over the rounds (errors summed), with every round's figures."""
    figures: dict[str, Any] = {
        name: statistics.median(run[name] for run in runs)
        for name in ("rps", "p50_ms", "p90_ms", "p99_ms", "max_ms", "mean_ms", "cpu_us_per_request")
    }
    figures["errors"] = sum(run["errors"] for run in runs)
    figures["requests"] = sum(run["requests"] for run in runs)
    figures["rounds"] = runs
    return figures


def mlflow_run(url: str) -> str:
    """A run on the MLflow server with the same 100 epochs logged (six metrics each); its id."""
    with httpx.Client(base_url=f"{url}/api/2.0/mlflow", timeout=30) as mlflow:
        experiment = mlflow.post("/experiments/create", json={"name": "bench"}).raise_for_status().json()
        run = (
            mlflow.post("/runs/create", json={"experiment_id": experiment["experiment_id"], "start_time": 0})
            .raise_for_status()
            .json()["run"]["info"]["run_id"]
        )
        for record in epoch_records(EPOCHS, utc_now()):
            stamp = int(record.at.timestamp() * 1000)
            metrics = [
                {"key": key, "value": getattr(record, key), "timestamp": stamp, "step": record.epoch}
                for key in METRIC_KEYS
            ]
            mlflow.post("/runs/log-batch", json={"run_id": run, "metrics": metrics}).raise_for_status()
        return str(run)


def targets(
    bench: Stack, job_id: str, floor: tuple[str, int], mlflow: tuple[str, int], mlflow_run_id: str
) -> dict[str, tuple[str, dict[str, str], int]]:
    """What is measured: a URL, the wrk script's environment and the serving process for each."""
    (floor_url, floor_pid), (mlflow_url, mlflow_pid), ours = floor, mlflow, bench.api_pid
    auth = {"BENCH_AUTH": f"Bearer {bench.api_key}"}
    history = (
        f"{mlflow_url}/api/2.0/mlflow/metrics/get-history?run_id={mlflow_run_id}&metric_key=val_accuracy"
    )
    return {
        "ours poll (all 100)": (f"{bench.api_url}/v1/jobs/{job_id}/metrics?after_epoch=0", auth, ours),
        "floor (all 100)": (f"{floor_url}/v1/jobs/{job_id}/metrics?after_epoch=0", {}, floor_pid),
        "ours poll (last 1)": (f"{bench.api_url}/v1/jobs/{job_id}/metrics?after_epoch=99", auth, ours),
        "floor (last 1)": (f"{floor_url}/v1/jobs/{job_id}/metrics?after_epoch=99", {}, floor_pid),
        "mlflow get-history (100)": (history, {}, mlflow_pid),
        "ours submit": (f"{bench.api_url}/v1/jobs", {**auth, "BENCH_BODY": json.dumps(SUBMISSION)}, ours),
    }


def ratios(results: dict[str, dict[int, dict[str, Any]]], connections: list[int]) -> dict[str, Any]:
    """Per concurrency: ours (and the API before, when measured) against the floor (throughput,
    p99 and CPU per request) and against MLflow."""
    out: dict[str, Any] = {}
    measured = [name for name in ("ours", "before") if f"{name} poll (all 100)" in results]
    for c in connections:
        row: dict[str, float] = {}
        for name in measured:
            for scope in ("all 100", "last 1"):
                ours, floor = results[f"{name} poll ({scope})"][c], results[f"floor ({scope})"][c]
                row[f"floor_over_{name}_rps ({scope})"] = round(floor["rps"] / ours["rps"], 2)
                row[f"{name}_over_floor_p99 ({scope})"] = round(ours["p99_ms"] / floor["p99_ms"], 2)
                row[f"{name}_over_floor_cpu ({scope})"] = round(
                    ours["cpu_us_per_request"] / floor["cpu_us_per_request"], 2
                )
        row["ours_over_mlflow_rps (all 100)"] = round(
            results["ours poll (all 100)"][c]["rps"] / results["mlflow get-history (100)"][c]["rps"], 1
        )
        out[str(c)] = row
    return out


@contextmanager
def api_at(ref: str, bench: Stack, folder: Path) -> Iterator[tuple[str, int]]:
    """The API as it was at git commit ``ref``, checked out beside this one and serving the
    benchmark's Redis like ours: its URL and process id."""
    checkout = folder / "before"
    git = ["git", "-C", str(REPO_ROOT)]
    subprocess.run([*git, "worktree", "add", "--detach", str(checkout), ref], check=True, capture_output=True)
    try:
        port = free_port()
        argv = [*api_argv(LOCALHOST, port), "--app-dir", str(checkout), *UVICORN_OPTIONS]
        env = service_env(bench.redis_url, bench.work_dir, {"PYTHONPATH": str(checkout)})
        url = f"http://{LOCALHOST}:{port}"
        with server_process("API before", argv, f"{url}/healthz", folder / "before.log", env) as child:
            yield url, child.process.pid
    finally:
        subprocess.run([*git, "worktree", "remove", "--force", str(checkout)], check=False)


def commit_of(ref: str) -> str:
    """The full commit id ``ref`` names."""
    done = subprocess.run(["git", "-C", str(REPO_ROOT), "rev-parse", ref], check=True, capture_output=True)
    return done.stdout.decode().strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=6, help="length of each wrk run")
    parser.add_argument("--connections", default="1,16,64,256", help="concurrency levels, comma-separated")
    parser.add_argument(
        "--rounds", type=int, default=3, help="alternated runs of each poll of ours and the floor"
    )
    parser.add_argument(
        "--before", metavar="REF", help="also measure the API of this git commit, in the same rounds"
    )
    args = parser.parse_args()
    connections = [int(c) for c in args.connections.split(",")]
    with (
        stack(worker=False) as bench,
        tempfile.TemporaryDirectory(prefix="kjobs-bench-mlflow-") as folder,
        ExitStack() as before_api,
    ):
        store = JobStore.from_settings(bench.settings)
        (job_id,) = seed_jobs(store, "bench", 1, EPOCHS)
        floor_port, mlflow_port = free_port(), free_port()
        floor_url, mlflow_url = f"http://{LOCALHOST}:{floor_port}", f"http://{LOCALHOST}:{mlflow_port}"
        floor_env = {
            **os.environ,
            "REDIS_URL": bench.redis_url,
            "KEY_PREFIX": KEY_PREFIX,
            "PYTHONPATH": str(REPO_ROOT),
        }
        floor_argv = [
            sys.executable,
            "-m",
            "uvicorn",
            "bench.floor_app:app",
            "--host",
            LOCALHOST,
            "--port",
            str(floor_port),
            *UVICORN_OPTIONS,
        ]
        mlflow_argv = [
            str(Path(sys.executable).parent / "mlflow"),
            "server",
            "--host",
            LOCALHOST,
            "--port",
            str(mlflow_port),
            "--workers",
            "1",
            "--backend-store-uri",
            f"sqlite:///{folder}/mlflow.db",
            "--default-artifact-root",
            f"{folder}/artifacts",
        ]
        with (
            server_process(
                "floor", floor_argv, f"{floor_url}/healthz", Path(folder) / "floor.log", floor_env
            ) as floor_server,
            server_process(
                "MLflow server",
                mlflow_argv,
                f"{mlflow_url}/health",
                Path(folder) / "mlflow.log",
                dict(os.environ),
            ) as mlflow_server,
        ):
            run_id = mlflow_run(mlflow_url)
            floor = (floor_url, floor_server.process.pid)
            measured = targets(bench, job_id, floor, (mlflow_url, mlflow_server.process.pid), run_id)
            rounded = ROUNDED
            if args.before:
                url, pid = before_api.enter_context(api_at(args.before, bench, Path(folder)))
                auth = {"BENCH_AUTH": f"Bearer {bench.api_key}"}
                measured[BEFORE[0]] = (f"{url}/v1/jobs/{job_id}/metrics?after_epoch=0", auth, pid)
                measured[BEFORE[1]] = (f"{url}/v1/jobs/{job_id}/metrics?after_epoch=99", auth, pid)
                rounded = (*ROUNDED, *BEFORE)
            results: dict[str, dict[int, dict[str, Any]]] = {name: {} for name in measured}
            for c in connections:
                rounds: dict[str, list[dict[str, Any]]] = {name: [] for name in measured}
                for name in rounded:  # a short run first, not counted: connections are opened
                    url, env, pid = measured[name]
                    wrk(url, c, 1, env, pid)
                for round_number in range(args.rounds):
                    for name, (url, env, pid) in measured.items():
                        if round_number and name not in rounded:
                            continue
                        run = wrk(url, c, args.seconds, env, pid)
                        rounds[name].append(run)
                        print(f"{name} at {c}: {run['rps']} req/s, p99 {run['p99_ms']} ms", flush=True)
                for name, runs in rounds.items():
                    results[name][c] = median_run(runs)
            submitted = connect(bench.settings).zcard(store.keys.jobs_index("bench")) - 1
    rows = [
        [name, c, r["rps"], r["p50_ms"], r["p99_ms"], r["cpu_us_per_request"], r["errors"]]
        for name, per in results.items()
        for c, r in per.items()
    ]
    print_table(
        "API under load (wrk)",
        ["target", "connections", "req/s", "p50 ms", "p99 ms", "server CPU us/req", "errors"],
        rows,
    )
    compared = ratios(results, connections)
    print_table(
        "Ratios (targets: floor/ours req/s <= 1.5 and ours/floor p99 <= 1.5)",
        ["connections", *next(iter(compared.values())).keys()],
        [[c, *row.values()] for c, row in compared.items()],
    )
    write_results(
        "api_load",
        {
            "seconds_per_run": args.seconds,
            "rounds": args.rounds,
            "before": commit_of(args.before) if args.before else None,
            "epochs_in_job": EPOCHS,
            "jobs_submitted": submitted,
            "results": {name: {str(c): r for c, r in per.items()} for name, per in results.items()},
            "ratios": compared,
        },
    )


if __name__ == "__main__":
    main()
