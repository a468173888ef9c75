"""Training one attempt of a job with Keras 3: data, model (fresh or resumed), fit, and result.

Backend-agnostic Keras only (``keras.layers``, ``keras.ops``), so the worker runs on the
TensorFlow, JAX or PyTorch backend. Importing this module imports Keras and the backend: only
the process that trains may import it, never a process that forks afterwards.
"""

import logging
import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import keras

from shared.datasets.store import DatasetStore
from shared.errors import SpecInvalid, StaleAttempt, TrainingError
from shared.jobs.store import JobStore
from shared.models.jobs import MAX_CONFUSION_CLASSES, BestEpoch, JobRecord, JobResult, StopReason
from shared.models.network import DataShape, NetworkInfeasible, Task
from shared.models.spec import BUILTIN_DATASETS, JobSpec
from shared.settings import Settings
from shared.storage.base import ArtifactMissing
from shared.storage.layout import dataset_key, model_key
from shared.studies.search import Judge
from worker.backend import backend_name, describe_device
from worker.cache import ArtifactCache
from worker.callbacks import EpochRecorder, GuardedEarlyStopping, StopController
from worker.checkpoints import Checkpoint, Checkpointer, load_checkpoint, save_model
from worker.data import (
    Arrays,
    Split,
    as_targets,
    class_scores,
    confusion_matrix,
    feature_statistics,
    fit_zca,
    load_upload,
    r_squared,
    read_idx_dataset,
    split_dataset,
)
from worker.lease import AttemptSignals
from worker.model import build_model, compile_model

log = logging.getLogger(__name__)
log.info("Keras %s on %s; trains on %s", keras.__version__, backend_name(), describe_device())


@dataclass(frozen=True)
class TrainingOutcome:
    stop_reason: StopReason
    result: JobResult | None
    has_model: bool


@lru_cache(maxsize=4)
def load_arrays(name: str, datasets_dir: Path | None, cache: ArtifactCache) -> Arrays:
    """The dataset, kept per process: an upload from the artifact store (through the worker's
    cache), or a built-in one from ``datasets_dir`` when it holds it, else from Keras's download."""
    if name not in BUILTIN_DATASETS:
        try:
            return load_upload(cache.path(dataset_key(name)))
        except ArtifactMissing:
            raise TrainingError(f"the arrays of the uploaded dataset {name!r} are missing") from None
    if datasets_dir is not None:
        arrays = read_idx_dataset(datasets_dir, name)
        if arrays is not None:
            return arrays
    try:
        (x_train, y_train), (x_test, y_test) = getattr(keras.datasets, name).load_data()
    except Exception as exc:
        raise TrainingError(
            f"dataset {name!r} is not in the datasets folder and could not be downloaded "
            f"({type(exc).__name__})"
        ) from None
    return Arrays(x_train, y_train, x_test, y_test)


def monitored(spec: JobSpec, task: Task = "classification") -> tuple[str, str]:
    """The metric that defines a job's best epoch, and whether it should rise or fall."""
    stopping = spec.regularization.early_stopping
    if stopping is not None:
        return stopping.monitor, stopping.resolved_mode()
    validated = spec.dataset.validation_split > 0
    if task == "regression":
        return ("val_data_loss" if validated else "data_loss"), "min"
    return ("val_accuracy" if validated else "accuracy"), "max"


def _early_stopping(spec: JobSpec, controller: StopController) -> GuardedEarlyStopping | None:
    stopping = spec.regularization.early_stopping
    if stopping is None:
        return None
    return GuardedEarlyStopping(
        controller,
        monitor=stopping.monitor,
        mode=stopping.resolved_mode(),
        patience=stopping.patience,
        min_delta=stopping.min_delta,
        restore_best_weights=stopping.restore_best_weights,
        start_from_epoch=stopping.start_from_epoch,
    )


def prepare_data(spec: JobSpec, settings: Settings, data: DataShape, cache: ArtifactCache) -> Split:
    """The job's data: the same split on every attempt, since the spec seeds it. Integer classes
    regressed become float targets."""
    keras.utils.set_random_seed(spec.training.seed)
    arrays = load_arrays(spec.dataset.name, settings.datasets_dir, cache)
    split = split_dataset(arrays, spec.dataset.validation_split, spec.dataset.train_limit, spec.training.seed)
    return as_targets(split) if data.task == "regression" else split


def dataset_shape(attempt: "Attempt", store: JobStore, cache: ArtifactCache) -> DataShape:
    """What the attempt's network trains on, as the dataset's description (in Redis, for an
    upload) and the spec's task say."""
    try:
        shape = DatasetStore(store, cache.store).shape_of(attempt.spec, attempt.tenant)
        return shape.data_shape(attempt.spec.model.task)
    except SpecInvalid:
        raise TrainingError("the uploaded dataset is gone (deleted, or its description is missing)") from None
    except NetworkInfeasible as exc:
        raise TrainingError(str(exc)) from None


def fresh_model(spec: JobSpec, split: Split, data: DataShape) -> keras.Model:
    """A new compiled model of the network planned on the dataset's shape (as the API checked
    it), with ZCA fitted on the training split when the spec asks for it, and feature vectors
    standardized with the training split's statistics."""
    try:
        plan = spec.model.plan(data)
    except NetworkInfeasible as exc:
        raise TrainingError(str(exc)) from None
    augmentation = spec.regularization.augmentation
    zca = fit_zca(split.x_train, augmentation.zca_epsilon) if augmentation.zca_whitening else None
    standardization = None if data.images else feature_statistics(split.x_train)
    model = build_model(spec, plan, split.x_train.shape[1:], zca, standardization)
    compile_model(model, spec, data.task)
    return model


@dataclass(frozen=True)
class Attempt:
    """What one attempt trains: the job, its number, and where an earlier attempt left off."""

    job_id: str
    tenant: str
    number: int
    spec: JobSpec
    resume_epoch: int = 0
    resume_best: BestEpoch | None = None
    resume_checkpoint: Checkpoint | None = None


def start(record: JobRecord, store: JobStore, cache: ArtifactCache) -> Attempt:
    """The attempt to run for ``record``: from scratch, or from its last committed checkpoint
    (read from the artifact store, whichever host wrote it)."""
    last_epoch = record.progress.epoch
    if last_epoch == 0:
        return Attempt(record.id, record.tenant, record.attempt, record.spec)
    (last,) = store.epoch_records(record.id, after_epoch=last_epoch - 1, limit=1)
    checkpoint = load_checkpoint(cache, record.id, last.attempt, last_epoch)
    log.info("job %s: attempt %d resumes after epoch %d", record.id, record.attempt, last_epoch)
    return Attempt(record.id, record.tenant, record.attempt, record.spec, last_epoch, record.best, checkpoint)


def train(
    attempt: Attempt,
    store: JobStore,
    settings: Settings,
    signals: AttemptSignals,
    cache: ArtifactCache,
    judge: Judge | None = None,
) -> TrainingOutcome:
    """Train (on from the resume point), record every epoch, evaluate on the test set, and save.
    A search's trial asks ``judge`` at each epoch record whether its pruner stops it there."""
    spec, job_id = attempt.spec, attempt.job_id
    data = dataset_shape(attempt, store, cache)
    split = prepare_data(spec, settings, data, cache)
    resumed = attempt.resume_checkpoint
    model = resumed.model if resumed else fresh_model(spec, split, data)
    state = resumed.state if resumed else {}
    controller = StopController(
        store,
        job_id,
        spec.resources.max_runtime_seconds,
        settings.cancel_check_seconds,
        elapsed_before=state.get("elapsed_seconds", 0.0),
        signals=signals,
    )
    stopping = _early_stopping(spec, controller)
    if stopping is not None and resumed is not None and "early_stopping" in state:
        stopping.resume_from(state["early_stopping"], resumed.best_weights)
    # An attempt that resumes a job early stopping had already ended trains no further epoch:
    # fit only runs the callbacks' start and end (which restore the best weights).
    early_stopped = "early_stopping" in state and state["early_stopping"].get("stopped_epoch", 0) > 0
    epochs = attempt.resume_epoch if early_stopped else spec.training.epochs
    recorder = EpochRecorder(
        store,
        job_id,
        attempt.number,
        controller,
        Checkpointer(cache.store, job_id, attempt.number),
        stopping,
        train_samples=len(split.x_train),
        monitor=monitored(spec, data.task),
        retry_seconds=settings.redis_retry_seconds,
        resumed=(attempt.resume_epoch, attempt.resume_best),
        judge=judge,
    )
    model.fit(
        split.x_train,
        split.y_train,
        batch_size=spec.training.batch_size,
        epochs=epochs,
        initial_epoch=attempt.resume_epoch,
        validation_data=(split.x_val, split.y_val) if split.x_val is not None else None,
        # Early stopping judges an epoch before the recorder commits it with the best epoch so far.
        callbacks=[cb for cb in (controller, stopping, recorder) if cb is not None],
        verbose=0,
    )
    return conclude(attempt, model, split, cache, controller, recorder, stopping, data)


def conclude(
    attempt: Attempt,
    model: keras.Model,
    split: Split,
    cache: ArtifactCache,
    controller: StopController,
    recorder: EpochRecorder,
    stopping: GuardedEarlyStopping | None,
    data: DataShape,
) -> TrainingOutcome:
    """Save the model (the best weights when early stopping restored them) and test it.

    A stop in the middle of an epoch falls back to the weights of the last recorded epoch, so
    the model and its result describe epochs that have records.
    """
    if controller.signals.lost.is_set():
        raise StaleAttempt(f"job {attempt.job_id}: attempt {attempt.number} lost its lease")
    restored_best = (
        stopping is not None and stopping.restore_best_weights and stopping.best_weights is not None
    )
    if controller.reason is not None and not restored_best:
        model.set_weights(recorder.committed_weights)
    if controller.reason is StopReason.PREEMPTED:  # it resumes later from its last checkpoint
        return TrainingOutcome(StopReason.PREEMPTED, None, False)
    has_model = recorder.last_epoch > 0
    if has_model:
        save_model(model, cache.store, model_key(attempt.job_id, attempt.number))
    if controller.reason is StopReason.CANCELLED:
        return TrainingOutcome(StopReason.CANCELLED, None, has_model)
    reason = controller.reason or _natural_stop(stopping, recorder.last_epoch, attempt.spec.training.epochs)
    best_epoch = recorder.best.epoch if recorder.best else None
    result = test_result(model, split, data, best_epoch, recorder.last_epoch)
    return TrainingOutcome(reason, result, has_model)


def test_result(
    model: keras.Model, split: Split, data: DataShape, best_epoch: int | None, last: int
) -> JobResult:
    """The model's scores on the test set: accuracy, and precision, recall and F1 per class, for
    classes; MAE, RMSE and R² for targets."""
    scores = model.evaluate(split.x_test, split.y_test, batch_size=1024, verbose=0, return_dict=True)
    result = JobResult(test_loss=float(scores["data_loss"]), best_epoch=best_epoch, stopped_epoch=last)
    predicted = model.predict(split.x_test, batch_size=1024, verbose=0)
    if data.task == "classification":
        confusion = confusion_matrix(split.y_test, predicted.argmax(axis=1), data.outputs)
        result.test_accuracy = float(scores["accuracy"])
        result.class_scores = class_scores(confusion, data.class_names)
        if data.outputs <= MAX_CONFUSION_CLASSES:
            result.confusion_matrix = confusion.tolist()
        return result
    result.test_mae, result.test_rmse = float(scores["mae"]), math.sqrt(float(scores["data_loss"]))
    result.test_r2 = r_squared(split.y_test, predicted)
    return result


def _natural_stop(stopping: keras.callbacks.EarlyStopping | None, last_epoch: int, epochs: int) -> StopReason:
    if stopping is not None and stopping.stopped_epoch > 0 and last_epoch < epochs:
        return StopReason.EARLY_STOPPING
    return StopReason.COMPLETED
