"""Searches on a real Redis, without a worker: asking, telling and ending, driven by hand."""

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import optuna
import pytest

from shared.datasets.store import DatasetStore
from shared.jobs.dispatch import Dispatch
from shared.jobs.store import JobStore
from shared.models.jobs import JobRecord, JobStatus, StopReason, new_job_id
from shared.models.spec import JobSpec
from shared.models.studies import StudyRecord, StudyRequest
from shared.queue import create_celery_app
from shared.settings import Settings
from shared.storage.local import LocalStore
from shared.studies.search import Search
from shared.studies.store import StudyStore
from tests.helpers import epoch_record, tiny_spec, wait_for


@pytest.fixture
def search(store: JobStore, settings_env: Settings, tmp_path: Path) -> Search:
    # The broker under the store's own prefix: the messages sent land apart from the suite's.
    broker = settings_env.model_copy(update={"key_prefix": store.keys.prefix})
    studies = StudyStore(Dispatch(store, create_celery_app(broker)))
    return Search(studies, DatasetStore(store, LocalStore(tmp_path)), settings_env)


def start(search: Search, **request: Any) -> StudyRecord:
    return search.create(
        StudyRequest.model_validate({"base": tiny_spec(training={"epochs": 3}), **request}), "t1"
    )


def end_each(search: Search, study: StudyRecord, status: JobStatus = JobStatus.CANCELLED) -> StudyRecord:
    """End every job the search has in flight, following each ending up, until it ends."""
    while (current := search.studies.get(study.id)) is not None and current.end_reason is None:
        running = [
            j
            for j in search.store.get_many(m.job_id for m in current.jobs)
            if j and not j.status.is_terminal()
        ]
        assert running, "a search with nothing in flight has ended"
        for job in running:
            search.store.change_status(job.id, status, reason="ended by the test")
            search.follow_up(search.store.get(job.id))
    assert current is not None
    return current


def test_a_grid_ends_when_every_point_was_drawn_an_invalid_one_not_counted(search: Search) -> None:
    study = start(
        search, space={"model.hidden_layers": {"choice": [[16], [0], [8]]}}, sampler="grid", max_trials=5
    )
    ended = end_each(search, study)
    assert ended.end_reason == "space_exhausted"
    assert sorted(str(m.variant.split(" ", 1)[1]) for m in ended.jobs) == [
        "hidden_layers=[16]",
        "hidden_layers=[8]",
    ]
    trials = search.trials(ended)
    assert len(trials) == 3
    (invalid,) = [t for t in trials if "invalid" in t.user_attrs]
    assert invalid.params == {"model.hidden_layers": "[0]"}


def test_max_parallel_trials_run_at_once_and_max_trials_end_the_search(search: Search) -> None:
    study = start(
        search,
        space={"training.learning_rate": {"float": {"low": 1e-4, "high": 1e-1, "log": True}}},
        max_trials=5,
        max_parallel=3,
    )
    assert len(study.jobs) == 3
    assert [m.trial for m in study.jobs] == [0, 1, 2]
    ended = end_each(search, study)
    assert (ended.end_reason, len(ended.jobs)) == ("max_trials", 5)


def test_two_processes_advancing_at_once_never_hand_out_the_same_trial(search: Search) -> None:
    space = {"training.learning_rate": {"float": {"low": 1e-4, "high": 1e-1, "log": True}}}
    study = start(search, space=space, max_trials=40, max_parallel=1)
    (first,) = study.jobs
    search.store.change_status(first.job_id, JobStatus.CANCELLED, reason="ended by the test")
    study = search.studies.get(study.id)
    assert study is not None
    search.studies.save(study.model_copy(update={"max_parallel": 20}))
    with ThreadPoolExecutor(max_workers=8) as pool:
        sent = [job for batch in pool.map(lambda _: search.advance(study.id), range(8)) for job in batch]
    grown = search.studies.get(study.id)
    assert grown is not None
    assert len(sent) == len(set(sent)) == 20
    assert [m.trial for m in grown.jobs] == list(range(21))
    assert len({m.job_id for m in grown.jobs}) == 21


def test_a_point_asked_by_a_process_that_died_before_its_job_is_told_failed(search: Search) -> None:
    study = start(
        search,
        space={"training.learning_rate": {"float": {"low": 1e-4, "high": 1e-1}}},
        max_trials=3,
        max_parallel=1,
    )
    orphan = optuna.load_study(study_name=study.id, storage=search.storage).ask()  # and then it died
    (first,) = study.jobs
    search.store.change_status(first.job_id, JobStatus.CANCELLED, reason="ended by the test")
    search.follow_up(search.store.get(first.job_id))
    trials = search.trials(search.studies.get(study.id) or study)
    assert trials[orphan.number].state is optuna.trial.TrialState.FAIL
    assert "never made" in trials[orphan.number].user_attrs["invalid"]


def train(store: JobStore, job_id: str, epochs: int) -> None:
    """As a worker would: run the job, record its epochs, succeed."""
    store.change_status(job_id, JobStatus.RUNNING, new_attempt=True, reason="started")
    for number in range(1, epochs + 1):
        store.append_epoch(job_id, epoch_record(number, attempt=1), None)
    store.change_status(
        job_id, JobStatus.SUCCEEDED, attempt=1, reason="done", fields={"stop_reason": "completed"}
    )


def test_an_epoch_budget_counts_what_trials_in_flight_may_still_train(search: Search) -> None:
    # Three epochs a trial: a budget of 8 starts two at once, and never a third.
    space = {"training.learning_rate": {"choice": [0.01, 0.003]}}
    study = start(search, space=space, sampler="random", max_total_epochs=8, max_parallel=3)
    assert len(study.jobs) == 2
    for member in study.jobs:
        train(search.store, member.job_id, 3)
        search.follow_up(search.store.get(member.job_id))
    ended = search.studies.get(study.id)
    assert ended is not None
    assert (ended.end_reason, len(ended.jobs)) == ("epoch_budget", 2)


def test_a_trial_is_told_by_how_its_job_ended(search: Search) -> None:
    study = start(
        search,
        space={"training.learning_rate": {"choice": [0.01, 0.003]}},
        sampler="random",
        max_parallel=2,
        max_trials=2,
    )
    pruned, failed = study.jobs
    store = search.store
    store.change_status(pruned.job_id, JobStatus.RUNNING, new_attempt=True, reason="started")
    store.change_status(
        pruned.job_id,
        JobStatus.SUCCEEDED,
        attempt=1,
        reason="pruned",
        fields={"stop_reason": StopReason.PRUNED.value},
    )
    store.change_status(failed.job_id, JobStatus.FAILED, reason="broken")
    for member in (pruned, failed):
        search.follow_up(store.get(member.job_id))
        search.follow_up(store.get(member.job_id))  # a follow-up twice tells once
    states = [t.state.name for t in search.trials(study)]
    assert states == ["PRUNED", "FAIL"]


def test_a_search_the_quota_stopped_is_moved_on_by_the_reapers_once_it_has_room(
    store: JobStore, settings_env: Settings, tmp_path: Path
) -> None:
    store.dispatch_seconds = 0.2
    broker = settings_env.model_copy(update={"key_prefix": store.keys.prefix})
    studies = StudyStore(Dispatch(store, create_celery_app(broker)))
    quota = settings_env.model_copy(update={"max_active_jobs_per_tenant": 1})
    search = Search(studies, DatasetStore(store, LocalStore(tmp_path)), quota)
    other = JobRecord.new(new_job_id(), "t1", JobSpec(), "cpu")
    store.create(other)  # the tenant's one active job
    study = start(search, space={"training.learning_rate": {"choice": [0.01, 0.003]}}, max_trials=1)
    assert study.jobs == [], "the quota is full: no trial starts, and no ending will come"
    store.change_status(other.id, JobStatus.CANCELLED, reason="ended by the test")
    sent = wait_for(
        lambda: studies.move_on_waiting(search.advance), timeout=5, interval=0.05, what="the reapers"
    )
    moved = studies.get(study.id)
    assert moved is not None
    assert [m.job_id for m in moved.jobs] == sent
    assert studies.redis.zscore(studies.keys.studies_waiting(), study.id) is None, "it has a trial in flight"
