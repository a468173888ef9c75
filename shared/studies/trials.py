"""What a search shows: its trials (the point each tried, how it went, its value and epochs),
its best trial, its parameters' importances, and how much of its budgets it spent."""

import logging
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any

import optuna
from optuna.storages import BaseStorage
from optuna.trial import FrozenTrial, TrialState

from shared.models.jobs import JobRecord, JobStatus, StopReason
from shared.models.search import SearchView, TrialView
from shared.models.search import TrialState as ShownState
from shared.models.studies import StudyRecord
from shared.studies import space as spaces
from shared.studies.search import INVALID, WARM_START

log = logging.getLogger(__name__)


def search_view(
    study: StudyRecord, trials: Sequence[FrozenTrial], jobs: Mapping[str, JobRecord], storage: BaseStorage
) -> SearchView:
    """The search of ``study``, from its trials in Optuna (in ``storage``) and its jobs as they are now."""
    config = study.search
    assert config is not None
    job_of = {member.trial: member.job_id for member in study.jobs}
    views = [trial_view(trial, jobs.get(job_of.get(trial.number, "")), config.space) for trial in trials]
    scored = [view for view in views if view.state == "complete" and view.value is not None]
    pick = max if study.objective.mode == "max" else min
    return SearchView(
        sampler=config.sampler,
        pruner=config.pruner,
        max_trials=config.max_trials,
        max_total_epochs=config.max_total_epochs,
        trials_started=len(study.jobs),
        epochs_spent=sum(job.progress.epoch for job in jobs.values()),
        end_reason=study.end_reason,
        best_trial=pick(scored, key=lambda view: view.value or 0.0) if scored else None,
        importances=importances(storage, study.id, tuple(_completed(trials))),
        trials=views,
    )


def trial_view(trial: FrozenTrial, job: JobRecord | None, space: dict[str, Any]) -> TrialView:
    """One trial as users see it."""
    state = shown_state(trial, job)
    value = trial.value if trial.state is TrialState.COMPLETE else None
    if trial.state is TrialState.PRUNED and trial.intermediate_values:
        value = trial.intermediate_values[max(trial.intermediate_values)]
    return TrialView(
        number=trial.number,
        job_id=job.id if job else trial.user_attrs.get("job_id"),
        params=spaces.decoded(space, trial.params),
        state=state,
        value=value,
        epochs=job.progress.epoch if job else 0,
        error=trial.user_attrs.get(INVALID) or (job.error.message if job and job.error else None),
    )


def shown_state(trial: FrozenTrial, job: JobRecord | None) -> ShownState:
    """A trial's state: from Optuna once told, from its job before."""
    if WARM_START in trial.user_attrs:
        return "warm_start"
    if INVALID in trial.user_attrs:
        return "invalid"
    if trial.state is TrialState.COMPLETE:
        return "complete"
    if trial.state is TrialState.PRUNED or (job is not None and job.stop_reason is StopReason.PRUNED):
        return "pruned"
    if job is None:
        return "failed" if trial.state is TrialState.FAIL else "queued"
    if job.status is JobStatus.CANCELLED:
        return "cancelled"
    if job.status is JobStatus.FAILED:
        return "failed"
    return "queued" if job.status is JobStatus.QUEUED else "running"


def _completed(trials: Sequence[FrozenTrial]) -> list[tuple[int, str]]:
    return [(t.number, repr(sorted(t.params.items()))) for t in trials if t.state is TrialState.COMPLETE]


@lru_cache(maxsize=256)
def importances(
    storage: BaseStorage, study_id: str, completed: tuple[tuple[int, str], ...]
) -> dict[str, float]:
    """Each parameter's importance (Optuna's fANOVA), computed again only when a trial completes."""
    if len(completed) < 2:
        return {}
    try:
        study = optuna.load_study(study_name=study_id, storage=storage)
        return {name: float(value) for name, value in optuna.importance.get_param_importances(study).items()}
    except (ValueError, RuntimeError) as exc:  # too few distinct points, say
        log.info("study %s: no importances yet: %s", study_id, exc)
        return {}
