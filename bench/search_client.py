"""What the search benchmark asks the API, as a user would: create a study, follow it until it
completes, and read its trials' jobs (their transitions and epoch records)."""

import statistics
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx

from bench.search_analysis import Epoch, TrialTimes

TERMINAL = ("succeeded", "failed", "cancelled")


@dataclass
class Followed:
    """A study followed to its end: its last view, when the client saw it end (None when it did
    not within the time allowed), and how long each of the client's reads of it took."""

    view: dict[str, Any]
    completed: float | None
    read_seconds: list[float] = field(default_factory=list)


def create_study(client: httpx.Client, body: dict[str, Any]) -> tuple[str, float]:
    """POST the study; its id and the client's time just before the request."""
    sent = time.time()
    answer = client.post("/v1/studies", json=body)
    if answer.status_code != 202:
        raise RuntimeError(f"POST /v1/studies: {answer.status_code} {answer.text}")
    return str(answer.json()["id"]), sent


def follow(client: httpx.Client, study_id: str, poll_seconds: float, timeout: float) -> Followed:
    """Read the study every ``poll_seconds`` until it completes or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    read_seconds: list[float] = []
    while True:
        began = time.perf_counter()
        view: dict[str, Any] = client.get(f"/v1/studies/{study_id}").raise_for_status().json()
        read_seconds.append(time.perf_counter() - began)
        if view["status"] == "completed":
            return Followed(view, time.time(), read_seconds)
        if time.monotonic() > deadline:
            return Followed(view, None, read_seconds)
        time.sleep(poll_seconds)


def seconds(stamp: str) -> float:
    """An ISO 8601 time of the API's as Unix seconds."""
    return datetime.fromisoformat(stamp).timestamp()


def records(client: httpx.Client, job_id: str) -> list[dict[str, Any]]:
    """Every epoch record of a job, page after page."""
    found: list[dict[str, Any]] = []
    after = 0
    while True:
        page = client.get(f"/v1/jobs/{job_id}/metrics", params={"after_epoch": after}).raise_for_status()
        body = page.json()
        found += body["records"]
        after = body["last_epoch"]
        if not body["has_more"]:
            return found


@dataclass
class TrialData:
    """A search's trials as read through the API: every epoch record, each trial's times, and
    what a check of them found."""

    epochs: list[Epoch] = field(default_factory=list)
    times: list[TrialTimes] = field(default_factory=list)
    test_accuracy: dict[int, float | None] = field(default_factory=dict)  # per trial, its final weights'
    problems: list[str] = field(default_factory=list)


def read_trials(client: httpx.Client, view: dict[str, Any]) -> TrialData:
    """Each trial's job and records; a problem noted for anything a search should not show."""
    data = TrialData()
    trials = view["search"]["trials"]
    job_ids = [trial["job_id"] for trial in trials if trial["job_id"]]
    numbers = [trial["number"] for trial in trials]
    for name, values in (("job", job_ids), ("trial number", numbers)):
        repeated = sorted(value for value, count in Counter(values).items() if count > 1)
        if repeated:
            data.problems.append(f"{name}s given to more than one trial: {repeated}")
    for trial in trials:
        if trial["job_id"]:
            _read_trial(client, trial, data)
    return data


def _read_trial(client: httpx.Client, trial: dict[str, Any], data: TrialData) -> None:
    job = client.get(f"/v1/jobs/{trial['job_id']}").raise_for_status().json()
    found = records(client, trial["job_id"])
    data.test_accuracy[trial["number"]] = (job["result"] or {}).get("test_accuracy")
    numbers = [record["epoch"] for record in found]
    if numbers != list(range(1, len(found) + 1)):
        data.problems.append(f"trial {trial['number']}: epochs {numbers}, not 1..N once each")
    if len(found) != trial["epochs"]:
        data.problems.append(
            f"trial {trial['number']}: {len(found)} records, the search says {trial['epochs']}"
        )
    for record in found:
        at = seconds(record["at"])
        data.epochs.append(
            Epoch(at, trial["number"], record["epoch"], record["val_accuracy"], record["epoch_seconds"])
        )
    if job["status"] in TERMINAL and found and job["started_at"] and job["worker"]:
        first = found[0]
        data.times.append(
            TrialTimes(
                worker=job["worker"]["name"],
                created=seconds(job["created_at"]),
                running=seconds(job["started_at"]),
                first_epoch_start=seconds(first["at"]) - first["epoch_seconds"],
                last_record=seconds(found[-1]["at"]),
                ended=seconds(job["finished_at"]),
                train_seconds=sum(record["epoch_seconds"] for record in found),
            )
        )


def summary_seconds(values: list[float]) -> dict[str, float]:
    """Median and largest of some durations, in milliseconds."""
    if not values:
        return {}
    return {
        "n": len(values),
        "p50_ms": round(statistics.median(values) * 1000, 1),
        "max_ms": round(max(values) * 1000, 1),
    }
