"""Scale: 10,000 finished jobs of 100 epoch records each in one Redis, then the latency of the
reads a client makes (a page of the job list, one job, a metrics poll), the Redis memory each
job and record takes, and proof from INFO commandstats that no request scans the keyspace.

    .venv/bin/python -m bench.scale [--jobs 10000] [--epochs 100] [--requests 300]
"""

import argparse
import random
import time
from collections.abc import Callable

import httpx

from bench.harness import print_table, stack, summary_ms, write_results
from bench.seed import seed_jobs
from shared.jobs.store import JobStore

TENANT = "bench"
SCANS = ("scan", "keys", "hscan", "sscan", "zscan")


def timed(client: httpx.Client, paths: Callable[[], str], count: int) -> list[float]:
    """The wall time of ``count`` GETs, each of a path ``paths()`` picks; all must succeed."""
    seconds = []
    for _ in range(count):
        path = paths()
        started = time.perf_counter()
        client.get(path).raise_for_status()
        seconds.append(time.perf_counter() - started)
    return seconds


def command_calls(store: JobStore) -> dict[str, int]:
    """Calls per Redis command so far, from INFO commandstats."""
    stats = store.redis.info("commandstats")
    return {name.removeprefix("cmdstat_"): int(value["calls"]) for name, value in stats.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--requests", type=int, default=300, help="requests per kind of read")
    args = parser.parse_args()
    with stack(worker=False) as bench, bench.client() as client:
        store = JobStore.from_settings(bench.settings)
        used_before = int(store.redis.info("memory")["used_memory"])
        started = time.perf_counter()
        ids = seed_jobs(store, TENANT, args.jobs, args.epochs)
        seed_seconds = time.perf_counter() - started
        used_after = int(store.redis.info("memory")["used_memory"])
        sample = random.Random(0).sample(ids, min(200, len(ids)))
        per_job_keys = [
            sum(
                int(store.redis.memory_usage(key) or 0)
                for key in (store.keys.job(job), store.keys.transitions(job), store.keys.epochs(job))
            )
            for job in sample
        ]
        epochs_key = [int(store.redis.memory_usage(store.keys.epochs(job)) or 0) for job in sample]
        calls_before = command_calls(store)
        pick = random.Random(1).choice
        deep_cursor = ids[len(ids) // 2]
        latencies = {
            "list first page (20)": timed(client, lambda: "/v1/jobs?limit=20", args.requests),
            "list page mid-way (20)": timed(
                client, lambda: f"/v1/jobs?limit=20&cursor={deep_cursor}", args.requests
            ),
            "list succeeded (20)": timed(client, lambda: "/v1/jobs?status=succeeded&limit=20", args.requests),
            "get a job": timed(client, lambda: f"/v1/jobs/{pick(ids)}", args.requests),
            "poll after epoch 99": timed(
                client, lambda: f"/v1/jobs/{pick(ids)}/metrics?after_epoch={args.epochs - 1}", args.requests
            ),
            "poll whole history": timed(client, lambda: f"/v1/jobs/{pick(ids)}/metrics", args.requests),
        }
        calls_after = command_calls(store)
        keyspace = int(store.redis.dbsize())
    scans = {name: calls_after.get(name, 0) - calls_before.get(name, 0) for name in SCANS}
    commands = {
        name: calls_after[name] - calls_before.get(name, 0)
        for name in sorted(calls_after)
        if calls_after[name] != calls_before.get(name, 0)
    }
    summaries = {name: summary_ms(seconds) for name, seconds in latencies.items()}
    memory = {
        "used_memory_delta_bytes": used_after - used_before,
        "per_job_bytes_info": round((used_after - used_before) / args.jobs),
        "per_epoch_record_bytes_info": round((used_after - used_before) / (args.jobs * args.epochs), 1),
        "per_job_bytes_memory_usage": round(sum(per_job_keys) / len(per_job_keys)),
        "per_epoch_record_bytes_memory_usage": round(sum(epochs_key) / len(epochs_key) / args.epochs, 1),
    }
    print_table(
        f"Scale: {args.jobs} jobs x {args.epochs} records, seeded in {seed_seconds:.0f} s",
        ["read", "n", "p50 ms", "p99 ms", "max ms"],
        [[name, s["n"], s["p50_ms"], s["p99_ms"], s["max_ms"]] for name, s in summaries.items()],
    )
    print_table("Redis memory", ["figure", "value"], list(memory.items()))
    print_table("Keyspace scans during the reads (must all be 0)", ["command", "calls"], list(scans.items()))
    write_results(
        "scale",
        {
            "jobs": args.jobs,
            "epochs_per_job": args.epochs,
            "keys_in_redis": keyspace,
            "seed_seconds": round(seed_seconds, 1),
            "latency": summaries,
            "memory": memory,
            "scan_calls_during_reads": scans,
            "redis_commands_during_reads": commands,
        },
    )


if __name__ == "__main__":
    main()
