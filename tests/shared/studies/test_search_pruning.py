"""A search's pruner judges a trial's epochs, never its last: a trial that trained every epoch it
asked for completes with its value, whatever its rung says (on a real Redis, driven by hand)."""

from pathlib import Path

import pytest
from optuna.trial import TrialState

from shared.datasets.store import DatasetStore
from shared.jobs.dispatch import Dispatch
from shared.jobs.store import JobStore
from shared.models.jobs import EpochRecord, JobStatus
from shared.models.studies import StudyJob, StudyRecord, StudyRequest
from shared.queue import create_celery_app
from shared.settings import Settings
from shared.storage.local import LocalStore
from shared.studies.search import Judge, Search
from shared.studies.store import StudyStore
from tests.helpers import epoch_record, tiny_spec


@pytest.fixture
def search(store: JobStore, settings_env: Settings, tmp_path: Path) -> Search:
    broker = settings_env.model_copy(update={"key_prefix": store.keys.prefix})
    studies = StudyStore(Dispatch(store, create_celery_app(broker)))
    return Search(studies, DatasetStore(store, LocalStore(tmp_path)), settings_env)


def scored(epoch: int, value: float) -> EpochRecord:
    return epoch_record(epoch).model_copy(update={"val_accuracy": value})


def judges(search: Search, study: StudyRecord, members: list[StudyJob]) -> list[Judge]:
    """What the worker training each of ``members`` would ask at its epochs."""
    found = [search.judge(study.id, member.trial) for member in members]
    assert None not in found
    return [judge for judge in found if judge is not None]


def finish(search: Search, job_id: str, values: list[float]) -> None:
    """As a worker would: run the job, record an epoch per value, complete, and tell the search."""
    search.store.change_status(job_id, JobStatus.RUNNING, new_attempt=True, reason="started")
    for epoch, value in enumerate(values, start=1):
        search.store.append_epoch(job_id, scored(epoch, value), None)
    search.store.change_status(
        job_id, JobStatus.SUCCEEDED, attempt=1, reason="done", fields={"stop_reason": "completed"}
    )
    search.tell(search.store.get(job_id))


@pytest.mark.parametrize("pruner", ["asha", "median"])
def test_a_trial_is_never_pruned_at_its_last_epoch(search: Search, pruner: str) -> None:
    # Three epochs a trial: ASHA's rungs (1, 3, 9 with a factor of 3) put one at the last epoch.
    request = {
        "base": tiny_spec(training={"epochs": 3}),
        "space": {"training.learning_rate": {"choice": [0.01, 0.003, 0.001]}},
        "sampler": "random",
        "pruner": {"type": pruner, "min_epochs": 1, "reduction_factor": 3, "startup_trials": 1},
        "max_trials": 3,
        "max_parallel": 3,
    }
    study = search.create(StudyRequest.model_validate(request), "t1")
    first, second, third = judges(search, study, study.jobs)
    first_values, second_values = [0.8, 0.85, 0.99], [0.9, 0.9, 0.9]
    assert [first(scored(epoch, value)) for epoch, value in enumerate(first_values, 1)] == [False] * 3
    finish(search, study.jobs[0].job_id, first_values)
    # The second leads the first until the first's last epoch, and at its own last falls behind.
    assert [second(scored(1, 0.9)), second(scored(2, 0.9))] == [False, False]
    assert second(scored(3, 0.9)) is False, "at its last epoch there is nothing left to save"
    assert third(scored(1, 0.1)) is True, "the pruner still stops a trial before its last epoch"
    finish(search, study.jobs[1].job_id, second_values)
    told = search.trials(study)[study.jobs[1].trial or 0]
    assert (told.state, told.value) == (TrialState.COMPLETE, 0.9)


def test_a_trial_s_last_epoch_is_its_own_where_the_space_samples_the_epochs(search: Search) -> None:
    request = {
        "base": tiny_spec(),
        "space": {"training.epochs": {"choice": [2, 3]}},
        "sampler": "grid",
        "pruner": {"type": "asha", "min_epochs": 1, "reduction_factor": 2},  # rungs at 1, 2, 4
        "max_parallel": 2,
    }
    study = search.create(StudyRequest.model_validate(request), "t1")
    trials = search.trials(study)
    longer, shorter = sorted(
        study.jobs, key=lambda member: -trials[member.trial or 0].params["training.epochs"]
    )
    judge_longer, judge_shorter = judges(search, study, [longer, shorter])
    assert [judge_longer(scored(1, 0.8)), judge_longer(scored(2, 0.99))] == [False, False]
    assert judge_shorter(scored(1, 0.9)) is False
    assert judge_shorter(scored(2, 0.9)) is False, "two epochs are all this trial trains"
