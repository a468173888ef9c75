"""The Keras network a spec describes, with its regularization, and its optimizer.

Backend-agnostic Keras 3 only (``keras.layers``, ``keras.ops``); imported only by the process
that trains.
"""

from typing import Any

import keras

from shared.models.spec import IMAGE_SHAPE, INPUT_UNITS, NUM_CLASSES, JobSpec, LayerSpec, RegularizationSpec
from worker.augmentation import RandomAffine


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


def augmentation_layer(spec: JobSpec) -> RandomAffine | None:
    """The spec's random rotation, translation, zoom and flip as one layer; None without any."""
    aug = spec.regularization.augmentation
    if not (aug.rotation or aug.translation or aug.zoom or aug.horizontal_flip):
        return None
    return RandomAffine(
        aug.rotation,
        aug.translation,
        aug.zoom,
        aug.horizontal_flip,
        # Apart from the dropout layers' seeds (the spec's seed plus the layer's index).
        seed=spec.training.seed + 101,
        name="augmentation",
    )


def hidden_dtype(spec: JobSpec) -> str | None:
    """The dtype policy of the hidden layers: ``mixed_float16`` when the spec asks for it, else
    None (the process's default policy, float32)."""
    return "mixed_float16" if spec.training.mixed_precision else None


def build_model(spec: JobSpec, zca: tuple[Any, Any] | None = None) -> keras.Model:
    """The spec's network on raw 28x28 pixels (0-255): scaling, augmentation and ZCA are layers.

    The random augmentation layer acts only in training (and is left out of the model a user
    downloads: ``worker.augmentation.without_augmentation``); ZCA whitening is a frozen Dense layer
    holding the transform fitted on the training split, so the saved model whitens its own
    inputs and loads with plain ``keras.models.load_model``.

    Mixed precision is set on each hidden layer, never as the process's global policy, so the
    next job this worker trains is unaffected. Scaling, augmentation and ZCA stay float32 (the
    whitening matrix's values can exceed float16's range) and so does the softmax output, whose
    loss needs float32's precision.
    """
    reg, seed, dtype = spec.regularization, spec.training.seed, hidden_dtype(spec)
    inputs = keras.Input(shape=IMAGE_SHAPE, name="pixels")
    x = keras.layers.Rescaling(1.0 / 255.0, name="scale")(inputs)
    augmentation = augmentation_layer(spec)
    if augmentation is not None:
        x = keras.layers.Reshape((*IMAGE_SHAPE, 1), name="channel")(x)
        x = augmentation(x)
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
            dtype=dtype,
            name=f"hidden_{index}",
        )(x)
        if dropout:
            x = keras.layers.Dropout(dropout, seed=seed + index, dtype=dtype, name=f"dropout_{index}")(x)
    outputs = keras.layers.Dense(NUM_CLASSES, activation="softmax", dtype="float32", name="output")(x)
    # Not the spec's name: Keras refuses some characters that a job name may hold.
    model = keras.Model(inputs, outputs, name="keras_job")
    if whitening is not None and zca is not None:
        mean, matrix = zca
        whitening.set_weights([matrix, -(mean @ matrix)])
    return model


def make_optimizer(spec: JobSpec) -> keras.optimizers.Optimizer:
    """The spec's optimizer at its learning rate, with dynamic loss scaling under mixed precision
    (float16 gradients would otherwise underflow to zero)."""
    training = spec.training
    if training.optimizer == "sgd":
        optimizer = keras.optimizers.SGD(learning_rate=training.learning_rate, momentum=training.momentum)
    else:
        optimizers = {
            "adam": keras.optimizers.Adam,
            "rmsprop": keras.optimizers.RMSprop,
            "adamw": keras.optimizers.AdamW,
        }
        optimizer = optimizers[training.optimizer](learning_rate=training.learning_rate)
    if training.mixed_precision:
        # Keras adds it by itself only for a model whose own policy is mixed; ours is per layer.
        return keras.optimizers.LossScaleOptimizer(optimizer)
    return optimizer


def compile_model(model: keras.Model, spec: JobSpec) -> None:
    """Compile for sparse labels, with accuracy and the data loss as metrics."""
    # Keras's loss includes the regularization penalty; this metric is the data loss alone.
    data_loss = keras.metrics.SparseCategoricalCrossentropy(name="data_loss")
    jit_compile = "auto" if spec.training.jit_compile is None else spec.training.jit_compile
    model.compile(
        optimizer=make_optimizer(spec),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy", data_loss],
        jit_compile=jit_compile,
    )
