"""The scheduler under a deep backlog: 10,000 queued jobs of 100 tenants, and a new tenant's
job. Two parts:

- ``dispatcher``: the dispatcher alone, in this process, on a Redis of its own: the backlog
  stored as the API stores jobs, slots pretended by worker heartbeats. It measures the Redis
  commands one release costs (the server's own count of the commands it processed), the time
  one pass takes to release into a freed slot, and, a new tenant submitting each time, whether
  its job is the one released (fair share says it is, ahead of the backlog).
- ``end_to_end``: the API and one real worker, the backlog on the worker's queue, its running
  job long. Each round a new tenant submits a one-epoch job through the API, then the running
  job is cancelled: the figures are the time from the submission, and from the cancel request,
  to the new job running (its ``running`` transition), p50 and p99.

    DATASETS_DIR=../shared/datasets .venv/bin/python -m bench.scheduler [--jobs 10000]
        [--tenants 100] [--rounds 200] [--e2e-rounds 30]

- ``throughput``: the article's study (six variants on an MNIST subset) with 1, 2 and 4 solo
  workers sharing this machine's CPU, as several slots share a GPU: jobs and epochs per minute.
"""

import argparse
import json
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

import httpx

from bench.harness import KEY_PREFIX, RESULTS_DIR, percentile, print_table, redis_server, stack, write_results
from shared.auth.keys import KeyStore
from shared.jobs.cancel import cancel
from shared.jobs.dispatch import Dispatch
from shared.jobs.store import JobStore
from shared.models.jobs import JobRecord, JobStatus, new_job_id
from shared.models.spec import JobSpec, QueueName
from shared.ops.registry import WorkerInfo, WorkerRegistry
from shared.queue import create_celery_app
from shared.redis.connection import connect
from shared.redis.keys import RedisKeys
from shared.scheduling.dispatcher import Dispatcher
from shared.settings import Settings

QUEUE: QueueName = "gpu"  # the dispatcher part's queue: no worker reads its messages
PARTS = ("dispatcher", "end_to_end", "throughput")
TINY = {"dataset": {"name": "mnist", "train_limit": 600}, "model": {"hidden_layers": [32]}}
LONG = {**TINY, "training": {"epochs": 500, "batch_size": 8}}


def fill(store: JobStore, tenants: int, jobs: int, queue: QueueName, spec: JobSpec) -> list[str]:
    """``jobs`` queued jobs, dealt round the ``tenants`` (each tenant's in a row, as a backlog
    is submitted), stored as the API stores them."""
    ids = []
    for number in range(jobs):
        tenant = f"tenant-{number * tenants // jobs:03d}"
        record = JobRecord.new(new_job_id(), tenant, spec, queue)
        store.create(record)
        ids.append(record.id)
    return ids


def commands(store: JobStore) -> dict[str, int]:
    """Calls of each command the Redis server has processed so far (this read is one INFO)."""
    stats = store.redis.info("commandstats")
    return {name.removeprefix("cmdstat_"): int(entry["calls"]) for name, entry in stats.items()}


def per_release(before: dict[str, int], after: dict[str, int], releases: int) -> dict[str, float]:
    """Each command's calls between two reads, per release (the second read's INFO left out)."""
    calls = {name: count - before.get(name, 0) for name, count in after.items()}
    calls["info"] -= 1
    return {name: round(count / max(releases, 1), 2) for name, count in sorted(calls.items()) if count}


def timed(action: Callable[[], Any]) -> tuple[Any, float]:
    started = time.perf_counter()
    result = action()
    return result, time.perf_counter() - started


def dispatcher_part(args: argparse.Namespace) -> dict[str, Any]:
    """The dispatcher alone against the backlog: commands per release, and a new tenant's job
    released into each freed slot."""
    with tempfile.TemporaryDirectory(prefix="kjobs-bench-") as folder, redis_server(Path(folder)) as url:
        settings = Settings(redis_url=url, key_prefix=KEY_PREFIX)
        redis = connect(settings)
        store = JobStore(redis, RedisKeys(KEY_PREFIX))
        registry = WorkerRegistry(redis, store.keys)
        dispatcher = Dispatcher(Dispatch(store, create_celery_app(settings)), registry, settings)
        spec = JobSpec.model_validate({"resources": {"queue": QUEUE}})
        _, fill_seconds = timed(lambda: fill(store, args.tenants, args.jobs, QUEUE, spec))
        for slot in range(args.slots):
            info = WorkerInfo(name=f"slot{slot}@bench", queues=[QUEUE], pid=slot, started_at=0, seen_at=0)
            registry.beat(info, ttl_seconds=3600)
        before = commands(store)
        first, first_seconds = timed(dispatcher.dispatch_once)
        first_calls = per_release(before, commands(store), len(first))
        running = list(first)
        seconds, newcomer_first = [], 0
        steady: dict[str, int] = {}  # the commands of the rounds' passes, each releasing one job
        for round_number in range(args.rounds):
            newcomer = JobRecord.new(new_job_id(), f"newcomer-{round_number:04d}", spec, QUEUE)
            store.create(newcomer)
            store.change_status(running.pop(0), JobStatus.CANCELLED, reason="a slot comes free")
            before = commands(store)
            released, took = timed(dispatcher.dispatch_once)
            after = commands(store)
            for name, count in after.items():
                steady[name] = steady.get(name, 0) + count - before.get(name, 0)
            steady["info"] -= 1
            seconds.append(took)
            newcomer_first += released == [newcomer.id]
            running.extend(released)
        before = commands(store)
        idle, _ = timed(dispatcher.dispatch_once)  # nothing free: what a pass costs then
        idle_calls = per_release(before, commands(store), 1)
    return {
        "jobs": args.jobs,
        "tenants": args.tenants,
        "slots": args.slots,
        "fill_seconds": round(fill_seconds, 1),
        "first_pass": {"released": len(first), "seconds": round(first_seconds, 4)},
        # Redis counts the commands a script runs as well as the script's own call (EVALSHA).
        # The first pass pays once for the scripts' loading and the broker's connection.
        "first_pass_calls_per_release": first_calls,
        "commands_per_release": round(sum(steady.values()) / args.rounds, 2),
        "calls_per_release": {name: round(n / args.rounds, 2) for name, n in sorted(steady.items()) if n},
        "commands_per_idle_pass": round(sum(idle_calls.values()), 2),
        "calls_per_idle_pass": idle_calls,
        "rounds": args.rounds,
        "newcomer_released_first": newcomer_first,
        "pass_ms": {
            "p50": round(1000 * statistics.median(seconds), 2),
            "p99": round(1000 * percentile(seconds, 99), 2),
            "max": round(1000 * max(seconds), 2),
        },
        "released_while_full": len(idle),
    }


def started_at(record: dict[str, Any]) -> float | None:
    starts = [t["at"] for t in record["transitions"] if t["status"] == "running"]
    return datetime.fromisoformat(starts[0]).timestamp() if starts else None


def wait_for(check: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.02)
    raise SystemExit(f"timed out waiting for {what}")


def end_to_end_part(args: argparse.Namespace) -> dict[str, Any]:
    """A real worker under the backlog: a new tenant's job from submission, and from a freed
    slot, to running."""
    with stack(worker=True) as bench:
        store = JobStore(connect(bench.settings), RedisKeys(KEY_PREFIX))
        spec = JobSpec.model_validate(LONG)
        _, fill_seconds = timed(lambda: fill(store, args.tenants, args.jobs, "cpu", spec))
        keys = KeyStore(store.redis, store.keys)
        registry = WorkerRegistry(store.redis, store.keys)
        with bench.client() as client:
            running = wait_for(partial(_in_hand, registry, set()), 300, "a backlog job to run")
            from_submit, from_free, from_ended, positions = [], [], [], []
            for round_number in range(args.e2e_rounds):
                _, key = keys.create(f"newcomer-{round_number:04d}-{uuid.uuid4().hex[:4]}", "bench")
                headers = {"Authorization": f"Bearer {key}"}
                submitted = time.time()
                new = client.post(
                    "/v1/jobs", json={**TINY, "training": {"epochs": 1}}, headers=headers
                ).json()
                place = client.get(f"/v1/jobs/{new['id']}", headers=headers).json().get("queue_place") or {}
                positions.append(place.get("position"))
                freed = time.time()
                cancel(store, running)  # as its tenant would
                record = wait_for(partial(_started, client, new["id"], headers), 120, "the new job to run")
                start = started_at(record) or 0.0
                from_submit.append(start - submitted)
                from_free.append(start - freed)
                stopped = wait_for(partial(_finished_at, store, running), 60, "the cancelled job to end")
                from_ended.append(start - stopped)
                seen = {running, new["id"]}
                running = wait_for(partial(_in_hand, registry, seen), 120, "the next backlog job to run")
    return {
        "jobs": args.jobs,
        "tenants": args.tenants,
        "fill_seconds": round(fill_seconds, 1),
        "rounds": args.e2e_rounds,
        "positions_at_submission": dict(sorted(_count(positions).items())),
        "submit_to_running_ms": _quantiles(from_submit),
        "slot_free_to_running_ms": _quantiles(from_free),
        # The slot is free once the cancelled job has ended (its last write): the dispatcher's share.
        "ended_to_running_ms": _quantiles(from_ended),
    }


def throughput_part(args: argparse.Namespace) -> list[dict[str, Any]]:
    """The article's study (its six variants, on an MNIST subset) with 1, 2 and 4 worker slots
    sharing this machine's CPU: its wall time, and jobs and epochs per minute."""
    rows = []
    for slots in args.slot_counts:
        with stack(worker=True, workers=slots) as bench, bench.client(timeout=60) as client:
            body = {
                "name": f"article-{slots}-slots",
                "preset": "article",
                "base": {"dataset": {"train_limit": args.train_limit}, "training": {"epochs": args.epochs}},
                "max_parallel": slots,
            }
            created = time.time()
            study = client.post("/v1/studies", json=body).raise_for_status().json()
            job_ids = [member["job_id"] for member in study["jobs"]]
            records = [
                wait_for(partial(_ended, client, job_id), 1800, "the study's jobs") for job_id in job_ids
            ]
            ended = max(datetime.fromisoformat(record["finished_at"]).timestamp() for record in records)
            wall = ended - created
            rows.append(
                {
                    "slots": slots,
                    "jobs": len(records),
                    "succeeded": sum(record["status"] == "succeeded" for record in records),
                    "wall_seconds": round(wall, 1),
                    "jobs_per_minute": round(60 * len(records) / wall, 2),
                    "epochs_per_minute": round(60 * sum(r["progress"]["epoch"] for r in records) / wall, 2),
                }
            )
            print(f"{slots} slots: {rows[-1]}", flush=True)
    return rows


def _ended(client: httpx.Client, job_id: str) -> dict[str, Any] | None:
    record: dict[str, Any] = client.get(f"/v1/jobs/{job_id}").json()
    return record if record["status"] in ("succeeded", "failed", "cancelled") else None


def _finished_at(store: JobStore, job_id: str) -> float | None:
    finished = store.get(job_id).finished_at
    return finished.timestamp() if finished else None


def _in_hand(registry: WorkerRegistry, seen: set[str]) -> str | None:
    """The job the worker trains, unless it is one of ``seen``."""
    jobs = [worker.current_job for worker in registry.live() if worker.current_job]
    return next((job_id for job_id in jobs if job_id not in seen), None)


def _started(client: httpx.Client, job_id: str, headers: dict[str, str]) -> dict[str, Any] | None:
    record: dict[str, Any] = client.get(f"/v1/jobs/{job_id}", headers=headers).json()
    return record if record["status"] != "queued" else None


def _count(values: list[Any]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for value in values:
        counts[str(value)] = counts.get(str(value), 0) + 1
    return counts


def _quantiles(seconds: list[float]) -> dict[str, float]:
    return {
        "p50": round(1000 * statistics.median(seconds), 1),
        "p99": round(1000 * percentile(seconds, 99), 1),
        "max": round(1000 * max(seconds), 1),
    }


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--part", choices=("all", "dispatcher", "end_to_end", "throughput"), default="all")
    parser.add_argument("--slot-counts", type=lambda v: [int(x) for x in v.split(",")], default=[1, 2, 4])
    parser.add_argument("--train-limit", type=int, default=3000, help="the throughput study's MNIST images")
    parser.add_argument("--epochs", type=int, default=2, help="the throughput study's epochs per job")
    parser.add_argument("--jobs", type=int, default=10_000, help="queued jobs in the backlog")
    parser.add_argument("--tenants", type=int, default=100, help="tenants the backlog is dealt to")
    parser.add_argument("--slots", type=int, default=8, help="slots the dispatcher part pretends")
    parser.add_argument("--rounds", type=int, default=200, help="freed slots in the dispatcher part")
    parser.add_argument("--e2e-rounds", type=int, default=30, help="new tenants in the end-to-end part")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    # A part run alone keeps the other parts' figures of the file (each with the settings it ran on).
    path = RESULTS_DIR / "scheduler.json"
    earlier = json.loads(path.read_text()) if args.part != "all" and path.exists() else {}
    figures: dict[str, Any] = {part: earlier[part] for part in PARTS if part in earlier}
    settings = earlier.get("settings", {})
    settings = {settings["part"]: settings} if "part" in settings else settings  # one run's, flat
    figures["settings"] = {**settings, args.part: vars(args)}
    if args.part in ("all", "dispatcher"):
        figures["dispatcher"] = part = dispatcher_part(args)
        print_table(
            f"The dispatcher against {part['jobs']:,} queued jobs of {part['tenants']} tenants",
            [
                "commands per release",
                "commands per pass, queue full",
                "pass p50 ms",
                "pass p99 ms",
                "new tenant's job released first",
            ],
            [
                [
                    part["commands_per_release"],
                    part["commands_per_idle_pass"],
                    part["pass_ms"]["p50"],
                    part["pass_ms"]["p99"],
                    f"{part['newcomer_released_first']} of {part['rounds']}",
                ]
            ],
        )
    if args.part in ("all", "end_to_end"):
        figures["end_to_end"] = part = end_to_end_part(args)
        print_table(
            f"A new tenant's job under {part['jobs']:,} queued jobs, one worker",
            [
                "rounds",
                "submit to running p50 ms",
                "p99 ms",
                "cancel to running p50 ms",
                "p99 ms",
                "ended to running p50 ms",
                "p99 ms",
            ],
            [
                [
                    part["rounds"],
                    part["submit_to_running_ms"]["p50"],
                    part["submit_to_running_ms"]["p99"],
                    part["slot_free_to_running_ms"]["p50"],
                    part["slot_free_to_running_ms"]["p99"],
                    part["ended_to_running_ms"]["p50"],
                    part["ended_to_running_ms"]["p99"],
                ]
            ],
        )
        print(f"positions at submission: {part['positions_at_submission']}", flush=True)
    if args.part in ("all", "throughput"):
        figures["throughput"] = rows = throughput_part(args)
        columns = ["slots", "jobs", "succeeded", "wall_seconds", "jobs_per_minute", "epochs_per_minute"]
        print_table(
            "The article's study with several slots on one machine",
            columns,
            [[r[c] for c in columns] for r in rows],
        )
    write_results("scheduler", figures)


if __name__ == "__main__":
    main()
