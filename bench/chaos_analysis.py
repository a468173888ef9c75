"""What the soak's figures are made of: each job's epochs checked against 1..N, its waits in the
queue from its transitions, and, for each restart, the longest any job waited past it.

A wait is judged two ways. Its length past the restart is the issue's figure, but it also
counts time spent behind busy workers or with no worker alive at all, which no dispatch deadline
is about. So each wait also has its *idle-worker* part: the time in it while /readyz (sampled
every second) showed a live worker idle. A job whose message was lost waits with a worker idle
until its deadline; a job behind a backlog waits with every worker busy, or none alive.
"""

import json
import re
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

from api.schemas import JobView
from shared.models.jobs import JobStatus, StopReason

# Samples further apart than this (the API or Redis was away) say nothing about the time between.
MAX_SAMPLE_GAP_SECONDS = 3.0


@dataclass(frozen=True)
class Fault:
    """One fault the soak made: what it did, when, and when the restarted part answered again."""

    kind: str  # "worker", "api" or "redis"
    killed_at: float
    back_at: float
    detail: str


@dataclass(frozen=True)
class WorkerSample:
    """One look at /readyz: live cpu workers and how many of them were idle; None for both when
    it did not answer."""

    at: float
    live: int | None
    idle: int | None

    def none_live(self) -> bool:
        """No worker was alive (none had a heartbeat in the last three beats)."""
        return self.live == 0

    def some_idle(self) -> bool:
        """A live worker was idle."""
        return bool(self.idle)


@dataclass(frozen=True)
class Wait:
    """One stay of a job in the queue, from when it could be sent to its next ``running``."""

    job_id: str
    queued_at: float
    started_at: float | None
    requeued: bool  # after a lost attempt, rather than at submission or a study's release


def messages_per_job(worker_log: Iterable[str]) -> Counter[str]:
    """Training messages each job's id came in, from the workers' JSON log lines (Celery's
    "Task ... received", which names the message's arguments)."""
    counts: Counter[str] = Counter()
    for line in worker_log:
        if '"celery.worker.strategy"' not in line:
            continue
        try:
            data = json.loads(line).get("data") or {}
        except ValueError:
            continue  # a line cut short by a SIGKILL
        for job_id in re.findall(r"[0-9a-f]{24}", str(data.get("args", ""))):
            counts[job_id] += 1
    return counts


def epoch_problems(epochs: Sequence[int], expected: int, stop_reason: StopReason | None) -> dict[str, Any]:
    """What is wrong with a job's record list against 1..N; empty when nothing is.

    N is the epochs the spec asked for when the job completed, else its last recorded epoch."""
    last = expected if stop_reason is StopReason.COMPLETED else max(epochs, default=0)
    counts = Counter(epochs)
    problems: dict[str, Any] = {
        "missing": sorted(set(range(1, last + 1)) - set(epochs)),
        "duplicated": sorted(epoch for epoch, seen in counts.items() if seen > 1),
        "beyond": sorted(epoch for epoch in counts if not 1 <= epoch <= last),
        "out_of_order": list(epochs) != sorted(epochs),
    }
    return {name: value for name, value in problems.items() if value}


def queue_waits(job: JobView, released_at: float | None = None) -> list[Wait]:
    """The job's stays in the queue, from its transitions. A held study job's first stay starts
    when its study let it go (``released_at``), not when it was stored."""
    waits: list[Wait] = []
    opened: tuple[float, bool] | None = None
    for transition in job.transitions:
        at = transition.at.timestamp()
        if transition.status is JobStatus.QUEUED and opened is None:
            requeued = transition.attempt > 0
            opened = (at if requeued or released_at is None else max(at, released_at), requeued)
        elif transition.status is JobStatus.RUNNING and opened is not None:
            waits.append(Wait(job.id, opened[0], at, opened[1]))
            opened = None
    if opened is not None:
        waits.append(Wait(job.id, opened[0], None, opened[1]))
    return waits


def study_releases(jobs: Sequence[JobView], max_parallel: int) -> dict[str, float]:
    """When each held job of a study was let go, estimated: the k-th held job goes when the k-th
    of the study's jobs ends (each ending frees one place under the cap)."""
    endings = sorted(t.at.timestamp() for job in jobs for t in job.transitions if t.status.is_terminal())
    held = [job.id for job in jobs[max_parallel:]]
    return {job_id: endings[k] for k, job_id in enumerate(held) if k < len(endings)}


def seconds_when(
    samples: Sequence[WorkerSample], start: float, end: float, seen: Callable[[WorkerSample], bool]
) -> float:
    """Seconds in [start, end) during which the samples showed ``seen`` (each sample stands for
    the time until the next, unless they are too far apart to tell)."""
    total = 0.0
    for sample, following in pairwise(samples):
        if seen(sample) and following.at - sample.at <= MAX_SAMPLE_GAP_SECONDS:
            total += max(0.0, min(following.at, end) - max(sample.at, start))
    return total


def affected(fault: Fault, waits: Sequence[Wait], requeue_window: float) -> list[Wait]:
    """The stays a fault touched: waiting when it was back, or requeued because of it (a lost
    lease is found up to ``requeue_window`` seconds after the kill). An API restart costs no
    lease, so no requeue is put down to it."""
    found = []
    for wait in waits:
        if wait.started_at is not None and wait.started_at <= fault.back_at:
            continue
        waiting = wait.queued_at <= fault.back_at
        in_window = fault.killed_at <= wait.queued_at <= fault.back_at + requeue_window
        lost_here = wait.requeued and fault.kind != "api" and in_window
        if waiting or lost_here:
            found.append(wait)
    return found


def fault_waits(
    fault: Fault,
    waits: Sequence[Wait],
    samples: Sequence[WorkerSample],
    requeue_window: float,
    ended_at: float,
) -> dict[str, Any]:
    """The longest wait past one restart (and how much of it no worker was alive), and the
    longest idle-worker time in any wait past it."""
    longest: tuple[float, Wait | None] = (0.0, None)
    idlest: tuple[float, Wait | None] = (0.0, None)
    touched = affected(fault, waits, requeue_window)
    for wait in touched:
        started = wait.started_at if wait.started_at is not None else ended_at
        idle = seconds_when(samples, max(wait.queued_at, fault.back_at), started, WorkerSample.some_idle)
        longest = max(longest, (started - fault.back_at, wait), key=lambda pair: pair[0])
        idlest = max(idlest, (idle, wait), key=lambda pair: pair[0])
    worst = longest[1]
    until = (worst.started_at or ended_at) if worst else fault.back_at
    no_worker = seconds_when(samples, fault.back_at, until, WorkerSample.none_live)
    return {
        "jobs_waiting": len(touched),
        "longest_wait_s": round(longest[0], 1),
        "longest_wait_job": worst and worst.job_id,
        "longest_wait_no_live_worker_s": round(no_worker, 1),
        "longest_idle_worker_wait_s": round(idlest[0], 1),
        "longest_idle_worker_wait_job": idlest[1] and idlest[1].job_id,
    }
