"""The case study on a GPU machine, through the service: the article's six variants on the full
MNIST on the gpu queue (one ``kjobs worker --gpus all`` worker per GPU, JAX backend), a mixed
precision baseline beside them, and a short baseline on the CPU for comparison. Prints each job's
epoch times and accuracies as it ends, then one table.

Run by ``bench/gpu_check.sh`` (see docs/gpu.md), in two steps:

    python3 bench/gpu_check.py --prepare-site     # standard library only: unpack .gpu-wheels
    PYTHONPATH=.gpu-site:. KERAS_BACKEND=jax python3 bench/gpu_check.py [--epochs 10]

Every step is bounded (``--budget``): what ends in time is printed, the rest is cancelled.
"""

import argparse
import importlib
import importlib.metadata
import re
import shutil
import sys
import time
import zipfile
from functools import partial
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
WHEELS, SITE, DATASETS, STATE = (
    ROOT / name for name in (".gpu-wheels", ".gpu-site", ".gpu-datasets", ".gpu-check")
)
FINAL = {"succeeded", "failed", "cancelled"}
CPU_RESERVE_SECONDS = 90.0  # kept back from the GPU study for the CPU run


# --- Step 1: the site folder, with the standard library only ---------------------------------


def supported_tags() -> set[tuple[str, str, str]] | None:
    """The wheel tags this interpreter accepts, from ``packaging`` or pip's copy of it."""
    for module in ("packaging.tags", "pip._vendor.packaging.tags"):
        try:
            tags = importlib.import_module(module)
        except ImportError:
            continue
        return {(tag.interpreter, tag.abi, tag.platform) for tag in tags.sys_tags()}
    return None


def wheel_fits(filename: str, supported: set[tuple[str, str, str]] | None) -> bool:
    """Whether a wheel named ``filename`` installs on this interpreter."""
    python_tags, abi_tags, platform_tags = filename[: -len(".whl")].split("-")[-3:]
    combos = {
        (p, a, pl)
        for p in python_tags.split(".")
        for a in abi_tags.split(".")
        for pl in platform_tags.split(".")
    }
    if supported is not None:
        return bool(combos & supported)
    own = f"cp{sys.version_info.major}{sys.version_info.minor}"
    return any(
        p in {own, "py3", "py2"} and a in {own, "abi3", "none"} and (pl == "any" or pl.endswith("x86_64"))
        for p, a, pl in combos
    )


def version_key(version: str) -> tuple[int, ...]:
    """A release version's numbers, for comparing (``2.11.7`` as ``(2, 11, 7)``)."""
    return tuple(int(part) for part in re.findall(r"\d+", version.split("+")[0])[:4])


def installed_version(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def prepare_site(wheels: Path = WHEELS, site: Path = SITE) -> None:
    """Unpack into ``site`` each carried wheel this machine lacks (or has older), for this Python."""
    supported = supported_tags()
    shutil.rmtree(site, ignore_errors=True)
    site.mkdir(parents=True)
    carried, kept = [], []
    for wheel in sorted(wheels.glob("*.whl")):
        if not wheel_fits(wheel.name, supported):
            continue
        distribution, version = wheel.name.split("-")[:2]
        present = installed_version(distribution)
        if present is not None and version_key(present) >= version_key(version):
            kept.append(f"{distribution} {present}")
            continue
        with zipfile.ZipFile(wheel) as archive:
            archive.extractall(site)
        carried.append(f"{distribution} {version}")
    print(f"this machine's own: {', '.join(kept) or 'none'}")
    print(f"carried into {site.name}: {', '.join(carried) or 'none'}")


# --- Step 2: the check, on the repository's code ---------------------------------------------


class Deadline:
    def __init__(self, seconds: float) -> None:
        self.end = time.monotonic() + seconds

    def left(self, reserve: float = 0.0) -> float:
        return self.end - reserve - time.monotonic()


def job_row(client: Any, job: dict[str, Any]) -> dict[str, Any]:
    """What the table shows of a finished job."""
    records = client.get(f"/v1/jobs/{job['id']}/metrics").json()["records"]
    seconds = [record["epoch_seconds"] for record in records]
    later = seconds[1:] or seconds
    device = (job.get("worker") or {}).get("device") or {}
    vals = [record["val_accuracy"] for record in records if record["val_accuracy"] is not None]
    return {
        "job": job["name"] or job["id"],
        "device": f"{device.get('kind', '?')}: {device.get('name', '?')}",
        "status": f"{job['status']} ({job['stop_reason']})",
        "epochs": len(records),
        "first_s": seconds[0] if seconds else float("nan"),
        "epoch_s": sum(later) / len(later) if later else float("nan"),
        "samples_s": max((record["samples_per_second"] for record in records), default=float("nan")),
        "val": max(vals, default=float("nan")),
        "test": (job.get("result") or {}).get("test_accuracy", float("nan")),
    }


def show(row: dict[str, Any]) -> None:
    print(
        f"{row['job']:<22} {row['device']:<34} {row['status']:<24} {row['epochs']:>3} ep  "
        f"first {row['first_s']:7.2f} s  later {row['epoch_s']:7.2f} s/ep  "
        f"{row['samples_s']:9.0f} samples/s  "
        f"val {row['val']:.4f}  test {row['test']:.4f}",
        flush=True,
    )


def follow(client: Any, job_ids: list[str], deadline: Deadline, reserve: float) -> list[dict[str, Any]]:
    """Wait for the jobs, printing each as it ends; cancel what is left when time runs out."""
    rows, pending = [], list(job_ids)
    while pending and deadline.left(reserve) > 0:
        for job_id in list(pending):
            job = client.get(f"/v1/jobs/{job_id}").json()
            if job["status"] in FINAL:
                pending.remove(job_id)
                rows.append(job_row(client, job))
                show(rows[-1])
        time.sleep(2.0)
    for job_id in pending:
        print(f"out of time: cancelling {job_id}", flush=True)
        client.post(f"/v1/jobs/{job_id}/cancel")
    return rows


def wait_ready(client: Any, gpu_workers: int, deadline: Deadline, check_alive: Any) -> list[dict[str, Any]]:
    """The live workers once the gpu workers and the CPU worker have reported their devices."""
    while deadline.left() > 0:
        check_alive()
        try:
            workers = client.get("/v1/workers").json()["items"]
        except Exception:  # the API is still starting
            workers = []
        ready = [w for w in workers if w["device"] is not None]
        if sum("gpu" in w["queues"] for w in ready) >= gpu_workers and any(
            "cpu" in w["queues"] for w in ready
        ):
            return ready
        time.sleep(1.0)
    raise SystemExit("the workers did not start in time; see .gpu-check/logs/")


def submit(client: Any, body: dict[str, Any], path: str = "/v1/jobs") -> dict[str, Any]:
    response = client.post(path, json=body)
    if response.status_code >= 400:
        raise SystemExit(f"{path} refused {body}: {response.status_code} {response.text}")
    answer: dict[str, Any] = response.json()
    return answer


def run_jobs(
    client: Any, args: argparse.Namespace, gpu_workers: int, deadline: Deadline
) -> list[dict[str, Any]]:
    """The article study and a mixed precision baseline on the gpu queue, then the CPU baseline."""
    limits = {"name": "mnist", "train_limit": args.train_limit}
    resources = {"queue": "gpu", "max_runtime_seconds": args.job_seconds}
    base = {"dataset": limits, "training": {"epochs": args.epochs}, "resources": resources}
    study = submit(
        client,
        {"name": "gpu-check", "preset": "article", "base": base, "max_parallel": gpu_workers},
        "/v1/studies",
    )
    mixed = submit(
        client,
        {
            **base,
            "preset": "baseline",
            "name": "baseline mixed16",
            "training": {"epochs": args.epochs, "mixed_precision": True},
        },
    )
    print(
        f"study {study['id']} ({len(study['jobs'])} variants) and job {mixed['id']} on the gpu queue",
        flush=True,
    )
    rows = follow(
        client, [job["job_id"] for job in study["jobs"]] + [mixed["id"]], deadline, CPU_RESERVE_SECONDS
    )
    cpu = submit(
        client,
        {
            "preset": "baseline",
            "name": "baseline on CPU",
            "dataset": limits,
            "training": {"epochs": args.cpu_epochs},
            "resources": {"queue": "cpu", "max_runtime_seconds": int(max(deadline.left(15.0), 10))},
        },
    )
    return rows + follow(client, [cpu["id"]], deadline, 5.0)


def summary(rows: list[dict[str, Any]]) -> None:
    print(
        "\n| job | device | status | epochs | first epoch s | later epochs s | samples/s "
        "| best val acc | test acc |"
    )
    print("| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        print(
            f"| {r['job']} | {r['device']} | {r['status']} | {r['epochs']} | {r['first_s']:.2f} "
            f"| {r['epoch_s']:.2f} "
            f"| {r['samples_s']:.0f} | {r['val']:.4f} | {r['test']:.4f} |"
        )
    by_name = {r["job"]: r for r in rows}
    gpu, cpu = by_name.get("baseline"), by_name.get("baseline on CPU")
    if gpu and cpu and cpu["epochs"] < 2:
        print("\nthe CPU run has one epoch, whose time includes compiling: no ratio")
    elif gpu and cpu and gpu["epoch_s"] > 0:
        print(
            f"\nbaseline epoch time: CPU {cpu['epoch_s']:.2f} s, GPU {gpu['epoch_s']:.2f} s: "
            f"x{cpu['epoch_s'] / gpu['epoch_s']:.1f}"
        )


def check_alive(children: list[Any]) -> None:
    """Stop at once, with the end of its log, when a process of the stack has exited."""
    for child in children:
        if not child.running():
            tail = child.log_path.read_text(errors="replace").splitlines()[-25:]
            print("\n".join(tail), file=sys.stderr)
            raise SystemExit(
                f"the {child.name} exited with code {child.process.returncode}; see {child.log_path}"
            )


def run_check(args: argparse.Namespace) -> None:
    import os

    import httpx

    from cli.processes import Child, spawn, terminate
    from cli.redis_server import free_port, resolve_redis
    from cli.stack import api_argv, child_env, client_url
    from shared.ops.hardware import FAKE_GPUS_ENV, list_gpus

    deadline = Deadline(args.budget)
    shutil.rmtree(STATE, ignore_errors=True)
    logs = STATE / "logs"
    gpus = list_gpus()
    print(f"Python {sys.version.split()[0]}, KERAS_BACKEND={os.environ.get('KERAS_BACKEND')}", flush=True)
    for gpu in gpus:
        print(f"GPU {gpu.index}: {gpu.name}, {gpu.memory_bytes // 2**20} MiB", flush=True)
    redis = resolve_redis(STATE / "redis", logs)
    children: list[Child] = []
    try:
        env = child_env(redis.url, STATE / "artifacts")
        env.update(DATASETS_DIR=str(DATASETS), AUTH_ENABLED="false", LOG_FORMAT="text")
        # JAX would take 75% of a GPU's memory per process at start; take it as needed instead.
        env.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
        if not gpus:
            print(
                "WARNING: nvidia-smi lists no GPU: the gpu queue's figures below are CPU figures", flush=True
            )
            env[FAKE_GPUS_ENV] = "0:no GPU:0"
        module = [sys.executable, "-m", "cli.main", "worker"]
        children.append(spawn("GPU workers", [*module, "--gpus", "all"], logs / "gpu-workers.log", env))
        children.append(spawn("CPU worker", [*module, "-Q", "cpu"], logs / "cpu-worker.log", env))
        port = free_port()
        children.append(spawn("API", api_argv("127.0.0.1", port), logs / "api.log", env))
        with httpx.Client(base_url=client_url("127.0.0.1", port), timeout=30) as client:
            workers = wait_ready(client, max(len(gpus), 1), deadline, partial(check_alive, children))
            for worker in workers:
                print(
                    f"worker {worker['name']}: {worker['queues']} {worker['backend']} {worker['device']}",
                    flush=True,
                )
            rows = run_jobs(client, args, max(len(gpus), 1), deadline)
        summary(rows)
    finally:
        for child in reversed(children):
            terminate(child, 20.0)
        redis.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--prepare-site", action="store_true", help="Only unpack .gpu-wheels into .gpu-site.")
    parser.add_argument("--epochs", type=int, default=10, help="Epochs of each GPU job (the article's 10).")
    parser.add_argument(
        "--train-limit", type=int, default=None, help="Training images (default: all 60,000)."
    )
    parser.add_argument("--cpu-epochs", type=int, default=2, help="Epochs of the CPU baseline.")
    parser.add_argument("--job-seconds", type=int, default=120, help="Runtime limit of each GPU job.")
    parser.add_argument("--budget", type=float, default=420.0, help="Seconds for the whole check.")
    args = parser.parse_args()
    if args.prepare_site:
        prepare_site()
    else:
        run_check(args)


if __name__ == "__main__":
    main()
