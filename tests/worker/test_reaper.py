"""The reaper settling one job on a real Redis, and what it logs: a requeue after a lost worker
is a warning naming its reason; a message sent again at a dispatch deadline says so, once, and
is not logged as another requeue."""

import logging
from pathlib import Path

import pytest

from shared.datasets.store import DatasetStore
from shared.jobs.attempts import AttemptStore
from shared.jobs.dispatch import Dispatch
from shared.jobs.endings import Endings
from shared.jobs.store import JobStore
from shared.models.jobs import JobRecord, JobStatus, new_job_id
from shared.models.spec import JobSpec
from shared.ops.registry import WorkerInfo, WorkerRegistry
from shared.queue import create_celery_app
from shared.scheduling.dispatcher import Dispatcher
from shared.settings import Settings
from shared.storage.local import LocalStore
from shared.studies.store import StudyStore
from tests.helpers import wait_for
from worker.reaper import Reaper
from worker.retention import RetentionSweep

SENT_AGAIN = "released, and no worker took it within its dispatch deadline; its message is sent again"


@pytest.fixture
def reaper(store: JobStore, settings_env: Settings, tmp_path: Path) -> Reaper:
    store.dispatch_seconds = 0.2
    attempts = AttemptStore(store, lease_seconds=0.05, max_attempts=3)
    dispatch = Dispatch(store, create_celery_app(settings_env))
    artifacts = LocalStore(tmp_path)
    endings = Endings(StudyStore(dispatch), artifacts)
    retention = RetentionSweep(endings.studies, DatasetStore(store, artifacts), settings_env)
    return Reaper(attempts, dispatch, endings, retention, settings_env)


def queued_job(store: JobStore) -> str:
    # On the gpu queue, which no worker of the suite takes: the messages sent stay unread.
    record = JobRecord.new(new_job_id(), "t1", JobSpec(), "gpu")
    store.create(record)
    return record.id


def settle_when_due(reaper: Reaper, job_id: str) -> None:
    wait_for(lambda: job_id in reaper.attempts.expired(), timeout=5, interval=0.05, what="its deadline")
    reaper.settle(job_id)


def reaper_lines(caplog: pytest.LogCaptureFixture) -> list[tuple[int, str]]:
    return [(r.levelno, r.getMessage()) for r in caplog.records if r.name == "worker.reaper"]


def release(reaper: Reaper, store: JobStore) -> list[str]:
    """What a dispatcher releases to the queue's one (pretended) worker."""
    registry = WorkerRegistry(store.redis, store.keys)
    registry.beat(WorkerInfo(name="w@test", queues=["gpu"], pid=1, started_at=0, seen_at=0), ttl_seconds=60)
    return Dispatcher(reaper.dispatch, registry, reaper.settings).dispatch_once()


def test_a_released_job_sent_again_at_its_deadline_is_logged_as_that(
    reaper: Reaper, store: JobStore, caplog: pytest.LogCaptureFixture
) -> None:
    job_id = queued_job(store)
    with caplog.at_level(logging.INFO, logger="worker.reaper"):
        settle_when_due(reaper, job_id)  # waiting for a slot: nothing to send, nothing to say
        assert release(reaper, store) == [job_id]
        settle_when_due(reaper, job_id)
    assert reaper_lines(caplog) == [(logging.INFO, f"job {job_id}: {SENT_AGAIN}")]
    assert [t.reason for t in store.get(job_id).transitions] == ["submitted"]


def test_a_requeue_is_a_warning_and_its_later_resend_is_not_another_requeue(
    reaper: Reaper, store: JobStore, caplog: pytest.LogCaptureFixture
) -> None:
    job_id = queued_job(store)
    assert release(reaper, store) == [job_id]
    assert reaper.attempts.claim(job_id) is not None
    with caplog.at_level(logging.INFO, logger="worker.reaper"):
        settle_when_due(reaper, job_id)  # its worker's lease ran out: it waits for a slot again
        assert release(reaper, store) == [job_id]
        settle_when_due(reaper, job_id)  # then nobody took it within its dispatch deadline
    requeued = f"job {job_id}: requeued: the worker of attempt 1 stopped renewing its lease"
    sent_again = f"job {job_id}: {SENT_AGAIN}"
    assert reaper_lines(caplog) == [(logging.WARNING, requeued), (logging.INFO, sent_again)]
    record = store.get(job_id)
    assert (record.status, record.attempt, len(record.transitions)) == (JobStatus.QUEUED, 1, 3)
