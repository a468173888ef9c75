"""Submissions on a real Redis: a job whose message cannot be sent is kept, never failed or lost,
and a client's retry of a queued job that was released sends its message again."""

from pathlib import Path

import pytest

from shared.datasets.store import DatasetStore
from shared.jobs.dispatch import Dispatch
from shared.jobs.store import JobStore
from shared.jobs.submission import submit_job
from shared.models.jobs import JobStatus
from shared.models.spec import JobSubmission
from shared.ops.registry import WorkerInfo, WorkerRegistry
from shared.queue import create_celery_app, queue_depths
from shared.scheduling.dispatcher import Dispatcher
from shared.settings import Settings
from shared.storage.local import LocalStore
from tests.helpers import free_port, tiny_spec


@pytest.fixture
def datasets(store: JobStore, tmp_path: Path) -> DatasetStore:
    return DatasetStore(store, LocalStore(tmp_path))


def on_broker(settings: Settings, store: JobStore, redis_url: str) -> Dispatch:
    """A dispatch under the store's key prefix whose broker is ``redis_url``."""
    broker = settings.model_copy(update={"redis_url": redis_url, "key_prefix": store.keys.prefix})
    return Dispatch(store, create_celery_app(broker))


def test_a_job_the_broker_refuses_is_kept_queued_with_its_dispatch_deadline(
    store: JobStore, datasets: DatasetStore, settings_env: Settings
) -> None:
    dispatch = on_broker(settings_env, store, f"redis://127.0.0.1:{free_port()}/0")
    record, created = submit_job(
        "t1", JobSubmission.model_validate(tiny_spec()), None, datasets, dispatch, settings_env
    )
    assert created
    assert store.get(record.id).status is JobStatus.QUEUED
    assert store.redis.zscore(store.keys.leases(), record.id) is not None, "a reaper sends it at its deadline"


def test_an_idempotent_retry_of_a_queued_job_sends_its_message_again(
    store: JobStore, datasets: DatasetStore, settings_env: Settings
) -> None:
    dispatch = on_broker(settings_env, store, settings_env.redis_url)
    submission = JobSubmission.model_validate(tiny_spec())

    def submit() -> tuple[str, bool]:
        record, created = submit_job("t1", submission, "retry-1", datasets, dispatch, settings_env)
        return record.id, created

    first, created = submit()
    assert created
    assert queue_depths(store.redis, store.keys)["cpu"] == 0, "it waits for a slot"
    assert submit() == (first, False)
    assert queue_depths(store.redis, store.keys)["cpu"] == 0, "still waiting, stored once"
    registry = WorkerRegistry(store.redis, store.keys)
    registry.beat(WorkerInfo(name="w@test", queues=["cpu"], pid=1, started_at=0, seen_at=0), ttl_seconds=60)
    assert Dispatcher(dispatch, registry, settings_env).dispatch_once() == [first]
    assert queue_depths(store.redis, store.keys)["cpu"] == 1
    store.redis.delete(f"{store.keys.broker_prefix()}cpu")  # the message lost on its way
    assert submit() == (first, False)
    assert queue_depths(store.redis, store.keys)["cpu"] == 1, "sent again, the job stored once"
    store.change_status(first, JobStatus.CANCELLED, reason="cancelled while queued")
    assert submit() == (first, False)
    assert queue_depths(store.redis, store.keys)["cpu"] == 1, "an ended job is not sent again"
