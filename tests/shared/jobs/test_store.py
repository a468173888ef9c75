"""JobStore on a real Redis: records, transitions, fencing, epoch records and the job list."""

import asyncio
import json
from concurrent.futures import ThreadPoolExecutor

import pytest

from shared.errors import Conflict, InvalidTransition, JobNotFound, StaleAttempt, TooManyRequests
from shared.jobs import changes
from shared.jobs.creation import ACTIVE_OR_QUEUED, Idempotency
from shared.jobs.feed import FeedPage, JobFeed
from shared.jobs.listing import list_jobs
from shared.jobs.store import JobStore
from shared.models.jobs import JobRecord, JobStatus, new_job_id
from shared.models.spec import JobSpec
from shared.redis.connection import connect_async
from shared.redis.writes import Writes
from shared.settings import Settings
from tests.helpers import epoch_record as epoch


def stored_job(store: JobStore, tenant: str = "t1", **spec: object) -> JobRecord:
    record = JobRecord.new(new_job_id(), tenant, JobSpec.model_validate(spec), "cpu")
    store.create(record)
    return record


def test_created_job_reads_back_equal(store: JobStore) -> None:
    record = stored_job(store, tags={"team": "vision"})
    assert store.get(record.id) == record
    assert store.status(record.id) is JobStatus.QUEUED


def test_unknown_job_is_not_found(store: JobStore) -> None:
    with pytest.raises(JobNotFound):
        store.get(new_job_id())


def test_ids_sort_by_submission_time() -> None:
    first, second = new_job_id(), new_job_id()
    assert len(first) == 24
    assert first[:12] <= second[:12]


def test_transition_starts_an_attempt_and_is_recorded(store: JobStore) -> None:
    record = stored_job(store)
    running = store.change_status(record.id, JobStatus.RUNNING, new_attempt=True, reason="picked up")
    assert (running.status, running.attempt) == (JobStatus.RUNNING, 1)
    assert running.started_at is not None
    assert [(t.status, t.attempt, t.reason) for t in running.transitions] == [
        (JobStatus.QUEUED, 0, "submitted"),
        (JobStatus.RUNNING, 1, "picked up"),
    ]


def test_a_transition_the_status_does_not_allow_is_refused(store: JobStore) -> None:
    record = stored_job(store)
    with pytest.raises(InvalidTransition):
        store.change_status(record.id, JobStatus.SUCCEEDED)
    assert store.status(record.id) is JobStatus.QUEUED


def test_a_stale_attempt_cannot_change_status(store: JobStore) -> None:
    record = stored_job(store)
    store.change_status(record.id, JobStatus.RUNNING, new_attempt=True)
    with pytest.raises(StaleAttempt):
        store.change_status(record.id, JobStatus.SUCCEEDED, attempt=2)
    assert store.status(record.id) is JobStatus.RUNNING


def test_epochs_are_stored_once_in_order(store: JobStore) -> None:
    record = stored_job(store)
    store.change_status(record.id, JobStatus.RUNNING, new_attempt=True)
    assert store.append_epoch(record.id, epoch(1), None) is True
    assert store.append_epoch(record.id, epoch(1), None) is False
    assert store.append_epoch(record.id, epoch(2), None) is True
    with pytest.raises(StaleAttempt):
        store.append_epoch(record.id, epoch(4), None)
    assert [r.epoch for r in store.epoch_records(record.id)] == [1, 2]
    assert store.get(record.id).progress.epoch == 2


def test_a_stale_attempt_cannot_append_epochs(store: JobStore) -> None:
    record = stored_job(store)
    store.change_status(record.id, JobStatus.RUNNING, new_attempt=True)
    with pytest.raises(StaleAttempt):
        store.append_epoch(record.id, epoch(1, attempt=7), None)
    assert store.epoch_records(record.id) == []


def test_a_feed_page_returns_only_newer_records(store: JobStore, settings_env: Settings) -> None:
    record = stored_job(store)
    store.change_status(record.id, JobStatus.RUNNING, new_attempt=True)
    for number in (1, 2, 3):
        store.append_epoch(record.id, epoch(number), None)

    async def read() -> FeedPage:
        feed = JobFeed(connect_async(settings_env), store.keys)
        try:
            return await feed.page(record.id, after_epoch=1, limit=1)
        finally:
            await feed.redis.aclose()

    page = asyncio.run(read())
    assert (page.tenant, page.status, page.total) == ("t1", JobStatus.RUNNING, 3)
    assert [json.loads(r)["epoch"] for r in page.records] == [2]


def active_count(store: JobStore, tenant: str) -> int:
    return sum(len(store.ids_in(store.keys.status_index(tenant, s.value))) for s in ACTIVE_OR_QUEUED)


def test_list_is_newest_first_with_cursor_pages(store: JobStore) -> None:
    ids = [stored_job(store).id for _ in range(5)]
    page, cursor = list_jobs(store, "t1", limit=2)
    assert [r.id for r in page] == ids[::-1][:2]
    rest, end = list_jobs(store, "t1", limit=10, cursor=cursor)
    assert [r.id for r in rest] == ids[::-1][2:]
    assert end is None


def test_list_filters_by_status_tag_and_tenant(store: JobStore) -> None:
    vision = stored_job(store, tags={"team": "vision"})
    other = stored_job(store, tags={"team": "audio"})
    stored_job(store, tenant="t2", tags={"team": "vision"})
    store.change_status(other.id, JobStatus.CANCELLED)
    assert [r.id for r in list_jobs(store, "t1", tags={"team": "vision"})[0]] == [vision.id]
    assert [r.id for r in list_jobs(store, "t1", statuses=[JobStatus.CANCELLED])[0]] == [other.id]
    both = list_jobs(store, "t1", statuses=[JobStatus.CANCELLED, JobStatus.QUEUED])[0]
    assert {r.id for r in both} == {vision.id, other.id}


def test_concurrent_submissions_of_one_tenant_keep_its_quota_exactly(store: JobStore) -> None:
    records = [JobRecord.new(new_job_id(), "crowded", JobSpec.model_validate({}), "cpu") for _ in range(24)]

    def submit(record: JobRecord) -> bool:
        try:
            return store.create(record, max_active=5)[1]
        except TooManyRequests:
            return False

    with ThreadPoolExecutor(max_workers=12) as pool:
        created = list(pool.map(submit, records))
    assert sum(created) == 5
    assert active_count(store, "crowded") == 5
    kept = {record.id for record, made in zip(records, created, strict=True) if made}
    for record in records:
        if record.id in kept:
            assert store.get(record.id) == record
        else:
            with pytest.raises(JobNotFound):
                store.get(record.id)


def test_concurrent_submissions_with_one_idempotency_key_make_one_job(store: JobStore) -> None:
    memo = Idempotency("same-key", "body-hash", 60)
    records = [JobRecord.new(new_job_id(), "retrying", JobSpec.model_validate({}), "cpu") for _ in range(8)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(lambda record: store.create(record, idempotency=memo), records))
    assert sum(created for _, created in answers) == 1
    assert len({job.id for job, _ in answers}) == 1
    with pytest.raises(Conflict):
        store.create(records[0], idempotency=Idempotency("same-key", "another-body", 60))


def test_concurrent_groups_of_jobs_keep_the_quota_and_are_stored_whole(store: JobStore) -> None:
    groups = [
        [JobRecord.new(new_job_id(), "grouped", JobSpec.model_validate({}), "cpu") for _ in range(2)]
        for _ in range(24)
    ]

    def create(group: list[JobRecord]) -> bool:
        marker = Writes()
        marker.set(store.keys.study(group[0].id), "a group")
        try:
            store.create_together("grouped", group, marker, max_active=5)
        except TooManyRequests:
            return False
        return True

    with ThreadPoolExecutor(max_workers=12) as pool:
        created = list(pool.map(create, groups))
    assert sum(created) == 2
    assert active_count(store, "grouped") == 4
    for group, made in zip(groups, created, strict=True):
        assert bool(store.redis.exists(store.keys.study(group[0].id))) is made
        assert [job is not None for job in store.get_many(job.id for job in group)] == [made, made]


def test_the_creation_script_declares_every_key_it_touches(store: JobStore) -> None:
    record = JobRecord.new(new_job_id(), "declared", JobSpec.model_validate({"tags": {"team": "a"}}), "cpu")
    writes = changes.creation(store.keys, record, store.dispatch_seconds)
    touched = {command.key for command in writes.commands if command.key is not None}
    assert touched == set(writes.keys())
    assert store.keys.tag_index("declared", "team", "a") in touched


def test_a_job_stored_by_an_earlier_version_takes_its_queue_from_its_spec() -> None:
    stored = JobRecord.new(new_job_id(), "t1", JobSpec.model_validate({"resources": {"queue": "gpu"}}), "gpu")
    earlier = stored.model_dump(mode="json", exclude={"queue"})
    assert JobRecord.model_validate(earlier).queue == "gpu"
