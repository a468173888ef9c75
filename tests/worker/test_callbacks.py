"""The training callbacks on a real tiny model and a real store."""

from pathlib import Path

import keras
import numpy as np
import pytest

from shared.errors import TrainingError
from shared.jobs.store import JobStore
from shared.models.jobs import JobRecord, JobStatus, StopReason, new_job_id
from shared.models.spec import JobSpec
from shared.storage.local import LocalStore
from worker.cache import ArtifactCache
from worker.callbacks import EpochRecorder, StopController
from worker.checkpoints import Checkpointer, load_checkpoint


def running_job(store: JobStore) -> str:
    record = JobRecord.new(new_job_id(), "t1", JobSpec(), "cpu")
    store.create(record)
    store.change_status(record.id, JobStatus.RUNNING, new_attempt=True)
    return record.id


def tiny_model() -> keras.Model:
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def make_recorder(
    store: JobStore,
    job_id: str,
    controller: StopController,
    folder: Path,
    monitor: tuple[str, str] = ("val_accuracy", "max"),
) -> EpochRecorder:
    checkpointer = Checkpointer(LocalStore(folder), job_id, 1)
    return EpochRecorder(
        store, job_id, 1, controller, checkpointer, None, train_samples=64, monitor=monitor, retry_seconds=5
    )


def fit(model: keras.Model, callbacks: list[keras.callbacks.Callback], epochs: int = 2) -> None:
    x = np.random.default_rng(0).normal(size=(64, 4)).astype("float32")
    y = np.arange(64) % 3
    model.fit(x, y, batch_size=8, epochs=epochs, validation_data=(x, y), callbacks=callbacks, verbose=0)


def test_a_non_finite_loss_fails_training_with_a_readable_error(store: JobStore, tmp_path: Path) -> None:
    job_id = running_job(store)
    controller = StopController(store, job_id, max_runtime_seconds=3600, check_seconds=60)
    recorder = make_recorder(store, job_id, controller, tmp_path)
    recorder.set_model(tiny_model())
    recorder.on_epoch_begin(0)
    with pytest.raises(TrainingError, match="loss became nan in epoch 1"):
        recorder.on_epoch_end(0, {"loss": float("nan"), "accuracy": 0.1})
    assert store.epoch_records(job_id) == []


def test_a_cancel_request_stops_training_and_leaves_no_partial_epoch(store: JobStore, tmp_path: Path) -> None:
    job_id = running_job(store)
    store.change_status(job_id, JobStatus.CANCELLING)
    controller = StopController(store, job_id, max_runtime_seconds=3600, check_seconds=0)
    recorder = make_recorder(store, job_id, controller, tmp_path)
    fit(tiny_model(), [controller, recorder], epochs=5)
    assert controller.reason is StopReason.CANCELLED
    assert store.epoch_records(job_id) == []


def test_the_runtime_limit_stops_training(store: JobStore) -> None:
    job_id = running_job(store)
    controller = StopController(store, job_id, max_runtime_seconds=0, check_seconds=60)
    fit(tiny_model(), [controller], epochs=5)
    assert controller.reason is StopReason.MAX_RUNTIME


def test_every_epoch_is_recorded_with_the_best_so_far(store: JobStore, tmp_path: Path) -> None:
    job_id = running_job(store)
    controller = StopController(store, job_id, max_runtime_seconds=3600, check_seconds=60)
    recorder = make_recorder(store, job_id, controller, tmp_path, monitor=("val_loss", "min"))
    fit(tiny_model(), [controller, recorder], epochs=3)
    records = store.epoch_records(job_id)
    assert [r.epoch for r in records] == [1, 2, 3]
    best = min(records, key=lambda r: r.val_loss or 0)
    job = store.get(job_id)
    assert job.best is not None
    assert (job.best.epoch, job.best.monitor, job.best.value) == (best.epoch, "val_loss", best.val_loss)
    assert recorder.last_epoch == 3
    kept = sorted(path.name for path in (tmp_path / job_id / "checkpoints").iterdir())
    assert kept == ["attempt-1-epoch-0002", "attempt-1-epoch-0003"], "older ones are pruned"
    checkpoint = load_checkpoint(
        ArtifactCache(LocalStore(tmp_path), tmp_path / "cache", 1 << 30), job_id, 1, 3
    )
    assert checkpoint.state["elapsed_seconds"] > 0
    assert checkpoint.model.optimizer.iterations.numpy() == 3 * 8
