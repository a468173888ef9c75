"""Training one job with Keras 3: the model, the data, the fit and the saved model.

Backend-agnostic Keras only (``keras.layers``, ``keras.ops``), so the worker runs on the
TensorFlow, JAX or PyTorch backend. Importing this module imports Keras and the backend: only
the process that trains may import it, never a process that forks afterwards.
"""

import logging
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import keras

from shared.artifacts import model_path
from shared.errors import TrainingError
from shared.jobs import JobResult, StopReason
from shared.settings import Settings
from shared.spec import IMAGE_SHAPE, INPUT_UNITS, NUM_CLASSES, JobSpec, LayerSpec, RegularizationSpec
from shared.store import JobStore
from worker.callbacks import EpochRecorder, GuardedEarlyStopping, StopController
from worker.data import Arrays, Split, fit_zca, read_idx_dataset, split_dataset

log = logging.getLogger(__name__)
log.info(
    "Keras %s on %s; devices: %s",
    keras.__version__,
    keras.backend.backend(),
    keras.distribution.list_devices(),
)


@dataclass(frozen=True)
class TrainingOutcome:
    stop_reason: StopReason
    result: JobResult | None
    has_model: bool


def describe_device() -> str:
    """What this process trains on, as the backend sees it."""
    devices = keras.distribution.list_devices()
    accelerators = [d for d in devices if not d.lower().startswith("cpu")]
    return ", ".join(accelerators) if accelerators else "cpu"


@lru_cache(maxsize=4)
def load_arrays(name: str, datasets_dir: Path | None) -> Arrays:
    """The dataset, from ``datasets_dir`` when it holds it, else Keras's download; cached per process."""
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


def _regularizer(l1: float, l2: float) -> keras.regularizers.Regularizer | None:
    if l1 and l2:
        return keras.regularizers.L1L2(l1=l1, l2=l2)
    if l1:
        return keras.regularizers.L1(l1)
    if l2:
        return keras.regularizers.L2(l2)
    return None


def _layer_settings(layer: int | LayerSpec, reg: RegularizationSpec) -> tuple[int, float, float, float]:
    if isinstance(layer, int):
        return layer, reg.l1, reg.l2, reg.dropout
    return (
        layer.units,
        _own_or(layer.l1, reg.l1),
        _own_or(layer.l2, reg.l2),
        _own_or(layer.dropout, reg.dropout),
    )


def _own_or(own: float | None, default: float) -> float:
    return default if own is None else own


def _augmentation_layers(spec: JobSpec) -> list[Any]:
    aug, seed = spec.regularization.augmentation, spec.training.seed
    # Each layer has a seed of its own, so that their random draws are independent.
    layers: list[Any] = []
    if aug.rotation:
        layers.append(keras.layers.RandomRotation(aug.rotation, fill_mode="constant", seed=seed + 101))
    if aug.translation:
        layers.append(
            keras.layers.RandomTranslation(
                aug.translation, aug.translation, fill_mode="constant", seed=seed + 102
            )
        )
    if aug.zoom:
        layers.append(keras.layers.RandomZoom(aug.zoom, aug.zoom, fill_mode="constant", seed=seed + 103))
    if aug.horizontal_flip:
        layers.append(keras.layers.RandomFlip("horizontal", seed=seed + 104))
    return layers


def build_model(spec: JobSpec, zca: tuple[Any, Any] | None = None) -> keras.Model:
    """The spec's network on raw 28x28 pixels (0-255): scaling, augmentation and ZCA are layers.

    Random augmentation layers act only in training; ZCA whitening is a frozen Dense layer
    holding the transform fitted on the training split, so the saved model whitens its own
    inputs and loads with plain ``keras.models.load_model``.
    """
    reg, seed = spec.regularization, spec.training.seed
    inputs = keras.Input(shape=IMAGE_SHAPE, name="pixels")
    x = keras.layers.Rescaling(1.0 / 255.0, name="scale")(inputs)
    augmentation = _augmentation_layers(spec)
    if augmentation:
        x = keras.layers.Reshape((*IMAGE_SHAPE, 1), name="channel")(x)
        for layer in augmentation:
            x = layer(x)
    x = keras.layers.Flatten(name="flatten")(x)
    whitening = keras.layers.Dense(INPUT_UNITS, trainable=False, name="zca_whitening") if zca else None
    if whitening is not None:
        x = whitening(x)
    if reg.input_dropout:
        x = keras.layers.Dropout(reg.input_dropout, seed=seed, name="input_dropout")(x)
    for index, layer in enumerate(spec.model.hidden_layers, start=1):
        units, l1, l2, dropout = _layer_settings(layer, reg)
        x = keras.layers.Dense(
            units,
            activation=spec.model.activation,
            kernel_regularizer=_regularizer(l1, l2),
            name=f"hidden_{index}",
        )(x)
        if dropout:
            x = keras.layers.Dropout(dropout, seed=seed + index, name=f"dropout_{index}")(x)
    outputs = keras.layers.Dense(NUM_CLASSES, activation="softmax", name="output")(x)
    # Not the spec's name: Keras refuses some characters that a job name may hold.
    model = keras.Model(inputs, outputs, name="keras_job")
    if whitening is not None and zca is not None:
        mean, matrix = zca
        whitening.set_weights([matrix, -(mean @ matrix)])
    return model


def make_optimizer(spec: JobSpec) -> keras.optimizers.Optimizer:
    """The spec's optimizer at its learning rate."""
    training = spec.training
    if training.optimizer == "sgd":
        return keras.optimizers.SGD(learning_rate=training.learning_rate, momentum=training.momentum)
    optimizers = {
        "adam": keras.optimizers.Adam,
        "rmsprop": keras.optimizers.RMSprop,
        "adamw": keras.optimizers.AdamW,
    }
    return optimizers[training.optimizer](learning_rate=training.learning_rate)


def monitored(spec: JobSpec) -> tuple[str, str]:
    """The metric that defines a job's best epoch, and whether it should rise or fall."""
    stopping = spec.regularization.early_stopping
    if stopping is not None:
        return stopping.monitor, stopping.resolved_mode()
    return ("val_accuracy" if spec.dataset.validation_split > 0 else "accuracy"), "max"


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


def prepare(spec: JobSpec, settings: Settings) -> tuple[Split, keras.Model]:
    """The job's data split and its compiled model, seeded by the spec."""
    keras.utils.set_random_seed(spec.training.seed)
    arrays = load_arrays(spec.dataset.name, settings.datasets_dir)
    split = split_dataset(arrays, spec.dataset.validation_split, spec.dataset.train_limit, spec.training.seed)
    augmentation = spec.regularization.augmentation
    zca = fit_zca(split.x_train, augmentation.zca_epsilon) if augmentation.zca_whitening else None
    model = build_model(spec, zca)
    # Keras's loss includes the regularization penalty; this metric is the data loss alone.
    data_loss = keras.metrics.SparseCategoricalCrossentropy(name="data_loss")
    model.compile(
        optimizer=make_optimizer(spec),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy", data_loss],
    )
    return split, model


def train(job_id: str, attempt: int, spec: JobSpec, store: JobStore, settings: Settings) -> TrainingOutcome:
    """Train, record every epoch, evaluate on the test set and save the model."""
    split, model = prepare(spec, settings)
    controller = StopController(
        store, job_id, spec.resources.max_runtime_seconds, settings.cancel_check_seconds
    )
    monitor, mode = monitored(spec)
    stopping = _early_stopping(spec, controller)
    recorder = EpochRecorder(store, job_id, attempt, controller, len(split.x_train), monitor, mode, stopping)
    validation = (split.x_val, split.y_val) if split.x_val is not None else None
    model.fit(
        split.x_train,
        split.y_train,
        batch_size=spec.training.batch_size,
        epochs=spec.training.epochs,
        validation_data=validation,
        # Early stopping judges an epoch before the recorder stores it with the best epoch so far.
        callbacks=[cb for cb in (controller, stopping, recorder) if cb is not None],
        verbose=0,
    )
    has_model = recorder.last_epoch > 0
    if has_model:
        save_model(model, model_path(settings.artifacts_dir, job_id))
    if controller.reason is StopReason.CANCELLED:
        return TrainingOutcome(StopReason.CANCELLED, None, has_model)
    reason = controller.reason or _natural_stop(stopping, recorder.last_epoch, spec.training.epochs)
    scores = model.evaluate(split.x_test, split.y_test, batch_size=1024, verbose=0, return_dict=True)
    best_epoch = recorder.best.epoch if recorder.best else None
    result = JobResult(
        test_loss=float(scores["data_loss"]),
        test_accuracy=float(scores["accuracy"]),
        best_epoch=best_epoch,
        stopped_epoch=recorder.last_epoch,
    )
    return TrainingOutcome(reason, result, has_model)


def _natural_stop(stopping: keras.callbacks.EarlyStopping | None, last_epoch: int, epochs: int) -> StopReason:
    if stopping is not None and stopping.stopped_epoch > 0 and last_epoch < epochs:
        return StopReason.EARLY_STOPPING
    return StopReason.COMPLETED


def save_model(model: keras.Model, path: Path) -> None:
    """Write the model so that a reader never sees a half-written file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.stem}.{os.getpid()}.partial.keras")
    model.save(partial)
    partial.replace(path)
