"""The search benchmark's judgement of its runs (bench/search.py): a search's progress (the best
validation accuracy so far against the epochs spent, in the order the epochs ended), the epochs
each run took to come within a tolerance of the best any run found, the median per method and
the saving, and a study's overhead against the sum of its trials' training times.

Pure functions of what the API answered, so that tests can check them on made-up runs.
"""

import bisect
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

TOLERANCE = 0.002
"""Within 0.2 points of accuracy of the best any method found: the issue's target."""


@dataclass(frozen=True)
class Epoch:
    """One epoch record of one trial of a search."""

    at: float  # the record's time (Unix seconds): when the epoch ended
    trial: int
    epoch: int
    val_accuracy: float | None
    seconds: float  # the record's epoch_seconds


@dataclass(frozen=True)
class TrialTimes:
    """When one trial's job was created, started, trained its epochs and ended, on which worker."""

    worker: str
    created: float
    running: float
    first_epoch_start: float  # the first record's time less its epoch_seconds
    last_record: float
    ended: float
    train_seconds: float  # its epoch_seconds, summed


Progress = list[tuple[int, float, float]]
"""(epochs spent, best validation accuracy so far, seconds since the search was created), one
point per improvement."""


def progress(epochs: Sequence[Epoch], created: float) -> Progress:
    """The best validation accuracy so far against the epochs spent, epochs taken in the order
    they ended across the search's trials; a point where the best improved."""
    points: Progress = []
    best: float | None = None
    for spent, record in enumerate(sorted(epochs, key=lambda e: (e.at, e.trial, e.epoch)), start=1):
        value = record.val_accuracy
        if value is not None and (best is None or value > best):
            best = value
            points.append((spent, value, round(record.at - created, 1)))
    return points


def epochs_to_reach(points: Progress, target: float) -> int | None:
    """The epochs spent when the best so far first reached ``target``; None if it never did."""
    return next((spent for spent, best, _ in points if best >= target - 1e-9), None)


def seconds_to_reach(points: Progress, target: float) -> float | None:
    """The seconds from the search's creation until the best so far first reached ``target``."""
    return next((seconds for _, best, seconds in points if best >= target - 1e-9), None)


def median_epochs(values: Sequence[float | None]) -> float | None:
    """The median of epochs to reach, a run that never reached counting as more than any; None
    when the median itself is such a run."""
    ordered = [float("inf") if value is None else float(value) for value in values]
    middle = statistics.median(ordered) if ordered else float("inf")
    return None if middle == float("inf") else middle


@dataclass(frozen=True)
class Saving:
    """How many times fewer epochs ``faster`` needed than ``slower`` (the medians' ratio).
    ``at_least`` when the slower method's median never reached: the ratio is then a lower bound,
    its budget over the faster's median."""

    ratio: float | None
    at_least: bool


def saving(slower: float | None, faster: float | None, budget: int) -> Saving:
    """The ratio of two medians of epochs to reach (``slower / faster``)."""
    if faster is None:
        return Saving(None, False)
    if slower is None:
        return Saving(budget / faster, True)
    return Saving(slower / faster, False)


def reach(
    runs: Mapping[str, Sequence[Progress]], tolerance: float, budget: int, slower: str, faster: str
) -> dict[str, object]:
    """Per method, each run's epochs to come within ``tolerance`` of the best value of every run
    of every method, their median, and the saving of ``faster`` over ``slower``."""
    best = max(points[-1][1] for method in runs.values() for points in method if points)
    target = best - tolerance
    per_run = {
        method: [epochs_to_reach(points, target) for points in method_runs]
        for method, method_runs in runs.items()
    }
    seconds = {
        method: [seconds_to_reach(points, target) for points in method_runs]
        for method, method_runs in runs.items()
    }
    medians = {method: median_epochs(values) for method, values in per_run.items()}
    ratio = saving(medians.get(slower), medians.get(faster), budget)
    return {
        "tolerance": tolerance,
        "best": best,
        "target": round(target, 6),
        "epochs_to_reach": per_run,
        "median": medians,
        "saving": None if ratio.ratio is None else round(ratio.ratio, 2),
        "saving_is_lower_bound": ratio.at_least,
        "seconds_to_reach": seconds,
        "median_seconds": {method: median_epochs(values) for method, values in seconds.items()},
    }


def overhead(
    created: float, completed: float, trials: Sequence[TrialTimes], workers: int
) -> dict[str, float]:
    """A study's wall time from creation to completion against two ideals, each a sum shared out
    over the workers: its trials' training times (Keras's ``fit``), as Ray reports Tune's
    bookkeeping overhead; and its trials' jobs (running to ended: loading the data, building the
    model, training, testing and saving it), which leaves what the study adds: asking for each
    trial, sending it, the workers taking it, and recording its epochs."""
    train = sum(trial.train_seconds for trial in trials)
    jobs = sum(trial.ended - trial.running for trial in trials)
    wall = completed - created
    return {
        "wall_seconds": round(wall, 2),
        "train_seconds": round(train, 2),
        "ideal_seconds": round(train / workers, 2),
        "ratio": _ratio(wall, train / workers),
        "overhead_percent": _percent_over(wall, train / workers),
        "job_seconds": round(jobs, 2),
        "ideal_job_seconds": round(jobs / workers, 2),
        "overhead_over_jobs_percent": _percent_over(wall, jobs / workers),
    }


def _ratio(wall: float, ideal: float) -> float:
    return round(wall / ideal, 3) if ideal > 0 else float("nan")


def _percent_over(wall: float, ideal: float) -> float:
    return round(100 * (wall / ideal - 1), 1) if ideal > 0 else float("nan")


def where_time_went(created: float, trials: Sequence[TrialTimes]) -> dict[str, float]:
    """The mean per trial of each part of a worker's time: waiting for its job to be taken
    (created to running), setting up (running to its first epoch's start), training, wrapping up
    (its last record to its ending), and each worker's idle time between a trial's ending and its
    next trial's start (from the study's creation for its first)."""
    count = len(trials)
    if not count:
        return {}
    idle = 0.0
    by_worker: dict[str, list[TrialTimes]] = {}
    for trial in trials:
        by_worker.setdefault(trial.worker, []).append(trial)
    for runs in by_worker.values():
        runs.sort(key=lambda t: t.running)
        ends = [created, *(t.ended for t in runs[:-1])]
        idle += sum(max(0.0, t.running - end) for t, end in zip(runs, ends, strict=True))
    parts = {
        "queued_to_running": sum(t.running - t.created for t in trials),
        "setup": sum(t.first_epoch_start - t.running for t in trials),
        "training": sum(t.train_seconds for t in trials),
        "wrap_up": sum(t.ended - t.last_record for t in trials),
        "worker_idle_between_trials": idle,
    }
    return {name: round(total / count, 3) for name, total in parts.items()}


def follow_ups(trials: Sequence[TrialTimes]) -> list[float]:
    """For each trial a trial's ending made room for, in the order they were made: the seconds
    from the latest ending before its job was created to that creation (telling Optuna, asking
    it for a point, storing and sending the job). Trials made at the study's creation have none."""
    ends = sorted(trial.ended for trial in trials)
    gaps = []
    for trial in sorted(trials, key=lambda t: t.created):
        before = bisect.bisect_right(ends, trial.created)
        if before:
            gaps.append(trial.created - ends[before - 1])
    return gaps


def quarters(values: Sequence[float]) -> dict[str, float]:
    """The mean of the first and of the last quarter of ``values``, and of all of them: whether a
    cost grows as a study does."""
    if len(values) < 4:
        return {}
    quarter = len(values) // 4
    return {
        "mean": round(statistics.fmean(values), 3),
        "first_quarter": round(statistics.fmean(values[:quarter]), 3),
        "last_quarter": round(statistics.fmean(values[-quarter:]), 3),
    }
