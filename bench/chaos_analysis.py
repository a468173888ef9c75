"""What the soak's figures are made of: each job's epochs checked against 1..N, its waits in the
queue from its transitions, and, for each restart, the longest any job waited past it.

A wait is judged two ways. Its length past the restart is the issue's figure, but it also
counts time spent behind busy workers or with no worker alive at all, which no dispatch deadline
is about. So each wait also has its *idle-worker* part: the time in it while /readyz (sampled
every second) showed a live worker idle. A job whose message was lost waits with a worker idle
until its deadline; a job behind a backlog waits with every worker busy, or none alive.
"""

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
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
    victim: str | None = None  # the worker killed: its log's name (worker-3)


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
    lost_attempt: int = 0  # the attempt whose worker was lost, for a requeue; else 0

    @property
    def requeued(self) -> bool:
        """Whether the job came back to the queue after a lost attempt."""
        return self.lost_attempt > 0


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
    opened: tuple[float, int] | None = None
    for transition in job.transitions:
        at = transition.at.timestamp()
        if transition.status is JobStatus.QUEUED and opened is None:
            lost = transition.attempt  # a requeue is written under the lost attempt's number
            opened = (at if lost or released_at is None else max(at, released_at), lost)
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


def requeue_causes(
    faults: Sequence[Fault],
    waits: Sequence[Wait],
    runners: Mapping[tuple[str, int], str],
    window: float,
) -> dict[tuple[str, int], Fault]:
    """The fault each requeue is put down to, by (job, lost attempt): the kill of the worker that
    ran the lost attempt (``runners``, from the workers' logs), else a Redis outage it followed
    within ``window`` seconds (a lease that ran out while Redis was away). An API restart costs
    no lease."""
    causes: dict[tuple[str, int], Fault] = {}
    for wait in waits:
        if not wait.requeued:
            continue
        runner = runners.get((wait.job_id, wait.lost_attempt))
        found = [f for f in faults if runner and f.victim == runner and f.killed_at <= wait.queued_at]
        if not found:
            found = [
                f for f in faults if f.kind == "redis" and f.killed_at <= wait.queued_at <= f.back_at + window
            ]
        if found:
            causes[(wait.job_id, wait.lost_attempt)] = found[-1]
    return causes


def affected(fault: Fault, waits: Sequence[Wait], causes: Mapping[tuple[str, int], Fault]) -> list[Wait]:
    """The stays a fault touched: waiting when it was over, or requeued because of it."""
    found = []
    for wait in waits:
        if wait.started_at is not None and wait.started_at <= fault.back_at:
            continue
        if wait.queued_at <= fault.back_at or causes.get((wait.job_id, wait.lost_attempt)) is fault:
            found.append(wait)
    return found


def fault_waits(
    fault: Fault,
    waits: Sequence[Wait],
    samples: Sequence[WorkerSample],
    causes: Mapping[tuple[str, int], Fault],
    ended_at: float,
) -> dict[str, Any]:
    """The longest wait past one restart (and how much of it no worker was alive), and the
    longest idle-worker time in any wait past it."""
    longest: tuple[float, Wait | None] = (0.0, None)
    idlest: tuple[float, Wait | None] = (0.0, None)
    touched = affected(fault, waits, causes)
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
