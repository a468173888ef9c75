"""Latency: from a submission to its ``running`` transition with an idle warm worker, and from
an epoch's end (its record's ``at``) to the moment a long-polling client and an event-stream
client see it.

    .venv/bin/python -m bench.latency [--submissions 20] [--epochs 10]
"""

import argparse
import json
import threading
import time
from datetime import datetime
from typing import Any

import httpx

from bench.harness import Stack, print_table, stack, summary_ms, write_results

# Small enough that the worker is idle again almost at once; the network is built after the
# running transition, so its build time is not in the figure.
TINY = {
    "name": "latency",
    "dataset": {"name": "mnist", "train_limit": 600},
    "model": {"hidden_layers": [32]},
    "training": {"epochs": 1, "batch_size": 64},
}
TERMINAL = ("succeeded", "failed", "cancelled")


def wait_terminal(client: httpx.Client, job_id: str) -> dict[str, Any]:
    """The job once it has ended."""
    while True:
        job: dict[str, Any] = client.get(f"/v1/jobs/{job_id}").raise_for_status().json()
        if job["status"] in TERMINAL:
            return job
        time.sleep(0.05)


def transition_at(job: dict[str, Any], status: str) -> float:
    """When the job first entered ``status``, as a Unix time."""
    return next(
        datetime.fromisoformat(t["at"]).timestamp() for t in job["transitions"] if t["status"] == status
    )


def submit_to_running(client: httpx.Client, count: int) -> dict[str, list[float]]:
    """Seconds from each submission (client clock, just before the POST) to its running transition."""
    from_client, from_queued = [], []
    for _ in range(count):
        sent = time.time()
        job_id = client.post("/v1/jobs", json=TINY).raise_for_status().json()["id"]
        job = wait_terminal(client, job_id)
        running = transition_at(job, "running")
        from_client.append(running - sent)
        from_queued.append(running - transition_at(job, "queued"))
    return {"submit (client) to running": from_client, "queued to running (server)": from_queued}


def follow_long_poll(bench: Stack, job_id: str, seen: dict[int, float]) -> None:
    """A client that long-polls the metrics with a cursor; records when each epoch arrives."""
    after = 0
    with bench.client(timeout=60) as client:
        while True:
            page = client.get(f"/v1/jobs/{job_id}/metrics", params={"after_epoch": after, "wait": 30}).json()
            now = time.time()
            for record in page["records"]:
                seen[record["epoch"]] = now - datetime.fromisoformat(record["at"]).timestamp()
            after = page["last_epoch"]
            if page["status"] in TERMINAL and not page["has_more"]:
                return


def follow_stream(bench: Stack, job_id: str, seen: dict[int, float]) -> None:
    """A client of the event stream; records when each epoch event arrives."""
    with bench.client(timeout=60) as client, client.stream("GET", f"/v1/jobs/{job_id}/events") as stream:
        event = ""
        for line in stream.iter_lines():
            if line.startswith("event: "):
                event = line.removeprefix("event: ")
            elif line.startswith("data: ") and event == "epoch":
                record = json.loads(line.removeprefix("data: "))
                seen[record["epoch"]] = time.time() - datetime.fromisoformat(record["at"]).timestamp()


def epoch_to_visible(bench: Stack, epochs: int) -> dict[str, list[float]]:
    """Seconds from each epoch's record time to its arrival at a long poll and at a stream."""
    spec = {
        **TINY,
        "dataset": {"name": "mnist", "train_limit": 6000},
        "model": {"hidden_layers": [64]},
        "training": {"epochs": epochs, "batch_size": 64},
    }
    with bench.client() as client:
        job_id = client.post("/v1/jobs", json=spec).raise_for_status().json()["id"]
        polled: dict[int, float] = {}
        streamed: dict[int, float] = {}
        followers = [
            threading.Thread(target=follow_long_poll, args=(bench, job_id, polled)),
            threading.Thread(target=follow_stream, args=(bench, job_id, streamed)),
        ]
        for follower in followers:
            follower.start()
        for follower in followers:
            follower.join()
        wait_terminal(client, job_id)
    return {
        "epoch end to long poll": list(polled.values()),
        "epoch end to event stream": list(streamed.values()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--submissions", type=int, default=20)
    parser.add_argument("--epochs", type=int, default=10)
    args = parser.parse_args()
    with stack(worker=True) as bench, bench.client() as client:
        wait_terminal(client, client.post("/v1/jobs", json=TINY).raise_for_status().json()["id"])  # warm-up
        samples = submit_to_running(client, args.submissions)
        samples.update(epoch_to_visible(bench, args.epochs))
    summaries = {name: summary_ms(seconds) for name, seconds in samples.items()}
    print_table(
        "Latency",
        ["what", "n", "p50 ms", "p99 ms", "max ms"],
        [[name, s["n"], s["p50_ms"], s["p99_ms"], s["max_ms"]] for name, s in summaries.items()],
    )
    write_results("latency", {"tiny_spec": TINY, "latency": summaries})


if __name__ == "__main__":
    main()
