"""A study's held jobs on a real Redis: held without a dispatch deadline, let go with one, and
moved on by the reapers' safety net whatever became of the endings that should have moved them."""

import time

import pytest

from shared.jobs.dispatch import Dispatch
from shared.jobs.store import JobStore
from shared.models.jobs import JobRecord, JobStatus, StudyMembership, new_job_id, utc_now
from shared.models.spec import JobSpec
from shared.models.studies import Objective, StudyJob, StudyRecord
from shared.queue import create_celery_app
from shared.redis.clock import redis_seconds
from shared.settings import Settings
from shared.studies.store import StudyStore
from tests.helpers import wait_for


@pytest.fixture
def studies(store: JobStore, settings_env: Settings) -> StudyStore:
    store.dispatch_seconds = 0.2
    return StudyStore(Dispatch(store, create_celery_app(settings_env)))


def stored_study(studies: StudyStore, variants: int, max_parallel: int) -> StudyRecord:
    study_id = new_job_id()
    membership = [StudyMembership(id=study_id, variant=f"v{n}") for n in range(variants)]
    jobs = [JobRecord.new(new_job_id(), "t1", JobSpec(), "cpu", study=member) for member in membership]
    study = StudyRecord(
        id=study_id,
        tenant="t1",
        name=None,
        objective=Objective(),
        max_parallel=max_parallel,
        jobs=[StudyJob(variant=m.variant, job_id=job.id) for m, job in zip(membership, jobs, strict=True)],
        created_at=utc_now(),
    )
    studies.create(study, jobs, max_active=None)
    return study


def deadline(studies: StudyStore, job_id: str) -> float | None:
    return studies.redis.zscore(studies.keys.leases(), job_id)


def test_held_jobs_have_no_dispatch_deadline_until_they_are_let_go(studies: StudyStore) -> None:
    study = stored_study(studies, variants=3, max_parallel=1)
    first, second, third = (job.job_id for job in study.jobs)
    assert deadline(studies, first) is not None
    assert (deadline(studies, second), deadline(studies, third)) == (None, None)
    studies.store.change_status(first, JobStatus.CANCELLED, reason="cancelled while queued")
    assert studies.let_go_on(study.id) == [second]
    assert deadline(studies, second) is not None, "let go with its deadline, should its sender die"
    assert deadline(studies, third) is None


def test_a_study_with_held_jobs_and_none_in_flight_is_moved_on_by_the_safety_net(
    studies: StudyStore,
) -> None:
    study = stored_study(studies, variants=2, max_parallel=1)
    first, second = (job.job_id for job in study.jobs)
    studies.store.change_status(first, JobStatus.CANCELLED, reason="cancelled while queued")
    studies.redis.zrem(studies.keys.endings(), first)  # as if its ending were never followed up
    sent = wait_for(studies.move_on_waiting, timeout=5, interval=0.05, what="the safety net's check")
    assert sent == [second]
    assert deadline(studies, second) is not None
    assert studies.redis.zscore(studies.keys.studies_waiting(), study.id) is None, "nothing held: it left"


def test_a_study_is_checked_once_a_dispatch_deadline(studies: StudyStore) -> None:
    studies.store.dispatch_seconds = 60
    study = stored_study(studies, variants=2, max_parallel=1)
    due = studies.redis.zscore(studies.keys.studies_waiting(), study.id)
    assert due is not None
    assert due / 1000 >= redis_seconds(studies.redis) + 59
    assert studies.move_on_waiting() == [], "not due yet"


def test_a_study_ends_with_its_last_job_and_is_purged_from_every_index(studies: StudyStore) -> None:
    study = stored_study(studies, variants=2, max_parallel=1)
    first, second = (job.job_id for job in study.jobs)
    studies.store.change_status(first, JobStatus.CANCELLED, reason="cancelled while queued")
    assert not studies.end_if_done(study.id), "a job is still held"
    studies.let_go_on(study.id)
    assert not studies.end_if_done(study.id), "a job is still queued"
    studies.store.change_status(second, JobStatus.CANCELLED, reason="cancelled while queued")
    assert studies.end_if_done(study.id)
    assert studies.ended_before(time.time() + 1) == [study.id]
    assert studies.ended_before(time.time() - 60) == []
    assert 0 < studies.redis.ttl(studies.keys.study(study.id)) <= studies.store.retention_seconds + 86_400
    studies.purge(study.id)
    assert studies.get(study.id) is None
    assert studies.page("t1", 10, None) == ([], None)
    assert studies.ended_before(time.time() + 1) == []
