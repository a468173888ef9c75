"""The endings outbox on a real Redis: every ending enters it with its transition, is held by the
process that settles it, and leaves it only once its follow-ups are done."""

import time
from pathlib import Path

import pytest

from shared.jobs.dispatch import Dispatch
from shared.jobs.endings import Endings
from shared.jobs.store import JobStore
from shared.models.jobs import JobRecord, JobStatus, new_job_id
from shared.models.spec import JobSpec
from shared.queue import create_celery_app
from shared.settings import Settings
from shared.storage.layout import checkpoint_key, checkpoints_prefix, model_key
from shared.storage.local import LocalStore
from shared.studies.store import StudyStore


def ended_job(store: JobStore) -> str:
    record = JobRecord.new(new_job_id(), "t1", JobSpec(), "cpu")
    store.create(record)
    store.change_status(record.id, JobStatus.CANCELLED, reason="cancelled while queued")
    return record.id


@pytest.fixture
def endings(store: JobStore, settings_env: Settings, tmp_path: Path) -> Endings:
    studies = StudyStore(Dispatch(store, create_celery_app(settings_env)))
    return Endings(studies, LocalStore(tmp_path), hold_seconds=0.5)


def test_an_ending_is_in_the_outbox_until_it_is_settled(store: JobStore, endings: Endings) -> None:
    job_id = ended_job(store)
    endings.artifacts.put_bytes(checkpoint_key(job_id, 1, 1, "state.json"), b"{}")
    assert store.claim_endings(10, 60) == [job_id]
    assert store.claim_endings(10, 60) == [], "held by the first claimer"
    store.ending_settled(job_id)
    assert store.redis.zscore(store.keys.endings(), job_id) is None
    assert endings.settle() == []
    assert endings.artifacts.keys(checkpoints_prefix(job_id)), (
        "settled already: its follow-ups do not run again"
    )


def test_settling_does_the_follow_ups_once(store: JobStore, endings: Endings) -> None:
    job_id = ended_job(store)
    endings.artifacts.put_bytes(checkpoint_key(job_id, 1, 1, "state.json"), b"{}")
    assert endings.settle() == [job_id]
    assert endings.artifacts.keys(checkpoints_prefix(job_id)) == []
    assert endings.settle() == []


def test_follow_ups_that_fail_are_tried_again_when_their_hold_ends(
    store: JobStore, endings: Endings, monkeypatch: pytest.MonkeyPatch
) -> None:
    job_id = ended_job(store)
    failing = {"left": 1}
    real = endings.follow_up

    def flaky(ended: str) -> None:
        if failing["left"]:
            failing["left"] -= 1
            raise OSError("the artifacts folder is away")
        real(ended)

    monkeypatch.setattr(endings, "follow_up", flaky)
    assert endings.settle() == []
    assert endings.settle() == [], "still held"
    time.sleep(0.6)
    assert endings.settle() == [job_id]


def test_a_job_deleted_before_its_ending_is_settled_is_dropped(store: JobStore, endings: Endings) -> None:
    job_id = ended_job(store)
    store.purge(job_id)
    assert store.redis.zscore(store.keys.endings(), job_id) is None
    assert endings.settle() == []


def test_a_job_ended_without_its_worker_gets_its_checkpoint_as_its_model(
    store: JobStore, endings: Endings
) -> None:
    record = JobRecord.new(new_job_id(), "t1", JobSpec(), "cpu")
    store.create(record)
    checkpoint = {"attempt": 1, "epoch": 3}
    fields = {"stop_reason": "cancelled", "model_checkpoint": checkpoint}
    store.change_status(
        record.id, JobStatus.CANCELLED, new_attempt=True, reason="its worker was lost", fields=fields
    )
    endings.artifacts.put_bytes(checkpoint_key(record.id, 1, 3, "model.keras"), b"the model")
    endings.artifacts.put_bytes(checkpoint_key(record.id, 1, 3, "state.json"), b"{}")
    assert not store.get(record.id).has_model
    assert endings.settle() == [record.id]
    assert store.get(record.id).has_model
    assert endings.artifacts.read_bytes(model_key(record.id, 1)) == b"the model"
    assert endings.artifacts.keys(checkpoints_prefix(record.id)) == []
