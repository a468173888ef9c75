"""The soak's figures, from what it collected: outcome, records, attempts, messages, waits past
each restart, and the verdict against the issue's target."""

import argparse
from collections import Counter
from dataclasses import dataclass
from typing import Any

from api.schemas import JobView
from bench.chaos_analysis import (
    Fault,
    Wait,
    WorkerSample,
    epoch_problems,
    fault_waits,
    queue_waits,
    requeue_causes,
    study_releases,
)
from bench.chaos_client import CountingTransport, Workload
from bench.harness import percentile, print_table
from shared.models.jobs import JobStatus

FAULT_COLUMNS = (
    "at_s",
    "kind",
    "down_s",
    "jobs_waiting",
    "longest_wait_s",
    "longest_wait_job",
    "longest_wait_no_live_worker_s",
    "longest_idle_worker_wait_s",
)
# A lease lost to a Redis outage is found within the lease, a heartbeat and a little slack after it.
LEASE_SLACK_SECONDS = 3.0


@dataclass(frozen=True)
class SoakRun:
    """What one soak collected (times are Unix times)."""

    t0: float
    chaos_ended: float
    ended: float
    workload: Workload
    faults: list[Fault]
    samples: list[WorkerSample]
    records: dict[str, list[int]]  # each job's epoch numbers, as listed
    messages: Counter[str]  # training messages each job came in, from the workers' logs
    runners: dict[tuple[str, int], str]  # the worker that ran each (job, attempt), from the logs
    posts: CountingTransport


def waits_of(workload: Workload) -> list[Wait]:
    """Every job's stays in the queue, a held study job's first one from its estimated release."""
    study = workload.study_view
    releases: dict[str, float] = {}
    if study is not None:
        study_jobs = [workload.views[job.job_id] for job in study.jobs]
        releases = study_releases(study_jobs, study.max_parallel or len(study_jobs))
    return [w for view in workload.views.values() for w in queue_waits(view, releases.get(view.id))]


def last_attempt_seconds(view: JobView) -> float | None:
    """From the job's last ``running`` transition to its end; None while it has not ended."""
    running = [t.at for t in view.transitions if t.status is JobStatus.RUNNING]
    if view.finished_at is None or not running:
        return None
    return (view.finished_at - running[-1]).total_seconds()


def spread(seconds: list[float]) -> dict[str, float]:
    """How many, the median and the largest, in seconds."""
    if not seconds:
        return {"n": 0}
    return {"n": len(seconds), "p50": round(percentile(seconds, 50), 1), "max": round(max(seconds), 1)}


def attempts_started(view: JobView) -> int:
    """Attempts that started training (a job the reaper ended takes one number more)."""
    return sum(1 for t in view.transitions if t.status is JobStatus.RUNNING)


def not_succeeded(view: JobView) -> dict[str, Any]:
    """What a job that did not succeed ended as."""
    error = view.error and f"{view.error.type}: {view.error.message}"
    return {"status": view.status.value, "attempt": view.attempt, "error": error}


def outcome(run: SoakRun) -> dict[str, Any]:
    """States, jobs that did not succeed, wrong record lists, attempts and messages."""
    views = run.workload.views
    states = Counter(view.status.value for view in views.values())
    problems = {}
    for job_id, view in views.items():
        found = epoch_problems(run.records[job_id], view.spec.training.epochs, view.stop_reason)
        if found:
            problems[job_id] = {"status": view.status.value, **found}
    return {
        "jobs": len(views),
        "ended": sum(n for state, n in states.items() if JobStatus(state).is_terminal()),
        "states": dict(states),
        "not_succeeded": {
            job_id: not_succeeded(v) for job_id, v in views.items() if v.status is not JobStatus.SUCCEEDED
        },
        "epoch_problems": problems,
        "attempts": {str(k): n for k, n in sorted(Counter(v.attempt for v in views.values()).items())},
        "messages_other_than_attempts": {
            job_id: {"messages": run.messages[job_id], "attempts_started": started}
            for job_id, view in views.items()
            if run.messages[job_id] != (started := attempts_started(view))
        },
        "submission_tries": dict(run.posts.outcomes),
    }


def fault_rows(run: SoakRun, lease_seconds: float) -> list[dict[str, Any]]:
    """Each fault, with the longest wait past it and its idle-worker part."""
    waits = waits_of(run.workload)
    causes = requeue_causes(run.faults, waits, run.runners, lease_seconds + LEASE_SLACK_SECONDS)
    return [
        {
            "kind": fault.kind,
            "at_s": round(fault.killed_at - run.t0, 1),
            "down_s": round(fault.back_at - fault.killed_at, 1),
            "detail": fault.detail,
            **fault_waits(fault, waits, run.samples, causes, run.ended),
        }
        for fault in run.faults
    ]


def verdict(result: dict[str, Any], deadline: float) -> dict[str, Any]:
    """The issue's target, part by part."""
    faults = result["faults"]
    worst = max((f["longest_wait_s"] for f in faults), default=0.0)
    idlest = max((f["longest_idle_worker_wait_s"] for f in faults), default=0.0)
    return {
        "all_succeeded": result["states"].get("succeeded", 0) == result["jobs"],
        "records_1_to_n_once": not result["epoch_problems"],
        "longest_wait_past_a_restart_s": worst,
        "waits_within_deadline": worst <= deadline,
        "longest_idle_worker_wait_past_a_restart_s": idlest,
        "idle_worker_waits_within_deadline": idlest <= deadline,
    }


def figures(run: SoakRun, args: argparse.Namespace, settings: dict[str, str]) -> dict[str, Any]:
    """The soak's outcome as the JSON results hold it."""
    waits = waits_of(run.workload)
    views = run.workload.views.values()
    last_end = max((v.finished_at.timestamp() for v in views if v.finished_at), default=run.t0)
    study = run.workload.study_view
    result = {
        "settings": {**settings, "appendfsync": "everysec"},
        "options": {k: v for k, v in vars(args).items() if k != "keep"},
        **outcome(run),
        "study": study and {"id": study.id, "status": study.status, "counts": study.counts},
        "faults": fault_rows(run, args.lease),
        "fault_counts": dict(Counter(f.kind for f in run.faults)),
        "queue_wait_s": spread([w.started_at - w.queued_at for w in waits if w.started_at is not None]),
        "last_attempt_run_s": spread([s for v in views if (s := last_attempt_seconds(v)) is not None]),
        "seconds": {"chaos": round(run.chaos_ended - run.t0, 1), "all_ended": round(last_end - run.t0, 1)},
    }
    return {**result, "target": verdict(result, args.deadline)}


def report(result: dict[str, Any]) -> None:
    """Print the figures and the verdict against the target."""
    states = result["states"]
    print_table("Outcome", ["jobs", "ended", *states], [[result["jobs"], result["ended"], *states.values()]])
    print_table("Attempts per job", ["attempts", "jobs"], list(result["attempts"].items()))
    deadline = result["options"]["deadline"]
    print_table(
        f"Waits past each restart (dispatch deadline {deadline:.0f} s)",
        ["at s", "fault", "down s", "jobs", "longest wait s", "its job", "no worker s", "most idle-worker s"],
        [[_cell(f[column]) for column in FAULT_COLUMNS] for f in result["faults"]],
    )
    for name in ("epoch_problems", "not_succeeded", "messages_other_than_attempts"):
        for job_id, found in result[name].items():
            print(f"{name.replace('_', ' ')}: {job_id} {found}")
    print(f"queue waits {result['queue_wait_s']}; last attempts' run times {result['last_attempt_run_s']}")
    print(f"tries of POST (status, or error): {result['submission_tries']}")
    print(f"study: {result['study']}")
    print(f"target: {result['target']}", flush=True)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    return f"{value:.1f}" if isinstance(value, float) else str(value)
