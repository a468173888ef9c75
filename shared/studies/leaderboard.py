"""A study's leaderboard and report: each variant's best epoch by the objective, side by side
(a search's own sections in ``shared.studies.search_report``)."""

import csv
import io
from collections.abc import Sequence
from statistics import fmean

from shared.models.jobs import EpochRecord, JobRecord
from shared.models.search import SearchView
from shared.models.studies import LeaderboardRow, Objective, StudyRecord
from shared.studies.search_report import search_markdown, table


def row(variant: str, job: JobRecord, records: Sequence[EpochRecord], objective: Objective) -> LeaderboardRow:
    """One variant's line, from its job and its epoch records."""
    scored = [r for r in records if getattr(r, objective.metric) is not None]
    pick = max if objective.mode == "max" else min
    best = pick(scored, key=lambda r: getattr(r, objective.metric)) if scored else None
    return LeaderboardRow(
        rank=0,
        variant=variant,
        job_id=job.id,
        status=job.status,
        best_value=getattr(best, objective.metric) if best else None,
        best_epoch=best.epoch if best else None,
        test_accuracy=job.result.test_accuracy if job.result else None,
        stopped_epoch=job.result.stopped_epoch if job.result else (records[-1].epoch if records else None),
        stop_reason=job.stop_reason,
        gap_at_best=best.generalization_gap if best else None,
        mean_epoch_seconds=fmean(r.epoch_seconds for r in records) if records else None,
    )


def rank(rows: list[LeaderboardRow], objective: Objective) -> list[LeaderboardRow]:
    """Rows best first by the objective; variants without a value yet come last."""
    sign = -1 if objective.mode == "max" else 1
    ordered = sorted(rows, key=lambda r: (r.best_value is None, sign * (r.best_value or 0.0)))
    return [r.model_copy(update={"rank": index}) for index, r in enumerate(ordered, start=1)]


def study_status(jobs: Sequence[JobRecord]) -> str:
    """``running`` while any job has not ended, then ``completed``."""
    return "completed" if all(job.status.is_terminal() for job in jobs) else "running"


COLUMNS = [
    "rank",
    "variant",
    "status",
    "best_value",
    "best_epoch",
    "test_accuracy",
    "stopped_epoch",
    "stop_reason",
    "gap_at_best",
    "mean_epoch_seconds",
    "job_id",
]


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(getattr(value, "value", value))


def to_csv(rows: Sequence[LeaderboardRow]) -> str:
    """The leaderboard as CSV."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(COLUMNS)
    for r in rows:
        writer.writerow([_cell(getattr(r, column)) for column in COLUMNS])
    return out.getvalue()


def to_markdown(study: StudyRecord, rows: Sequence[LeaderboardRow], search: SearchView | None = None) -> str:
    """The leaderboard as a Markdown table under a heading that names the objective; a search's
    summary, best trial, importances and trials come first, the leaderboard of its jobs last."""
    objective = f"{study.objective.metric} ({study.objective.mode})"
    lines = [f"# {study.name or study.id}", ""]
    if search is not None:
        lines += [f"A search for the best {objective} of each trial.", ""]
        lines += [*search_markdown(search, study.objective), "## Leaderboard", ""]
    lines += [f"Ranked by the best {objective} over the epochs.", ""]
    lines += table(COLUMNS, [[_cell(getattr(r, column)) for column in COLUMNS] for r in rows])
    return "\n".join(lines) + "\n"
