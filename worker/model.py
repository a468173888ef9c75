"""The Keras network a spec describes, with its regularization, and its optimizer.

Backend-agnostic Keras 3 only (``keras.layers``, ``keras.ops``); imported only by the process
that trains.
"""

import math
from typing import Any

import keras

from shared.models.datasets import BUILTIN_SHAPES
from shared.models.network import (
    BatchNormLayer,
    Conv2DLayer,
    DenseLayer,
    DropoutLayer,
    FlattenLayer,
    GaussianNoiseLayer,
    GlobalPoolLayer,
    Layer,
    NetworkPlan,
    Pool2DLayer,
    Task,
)
from shared.models.spec import JobSpec
from worker.augmentation import RandomAffine


def _regularizer(l1: float, l2: float) -> keras.regularizers.Regularizer | None:
    if l1 and l2:
        return keras.regularizers.L1L2(l1=l1, l2=l2)
    if l1:
        return keras.regularizers.L1(l1)
    if l2:
        return keras.regularizers.L2(l2)
    return None


def _own_or(own: float | None, default: float) -> float:
    return default if own is None else own


def augmentation_layer(spec: JobSpec) -> RandomAffine | None:
    """The spec's random rotation, translation, zoom, flip, brightness and contrast as one layer;
    None without any."""
    aug = spec.regularization.augmentation
    if not (
        aug.rotation or aug.translation or aug.zoom or aug.horizontal_flip or aug.brightness or aug.contrast
    ):
        return None
    return RandomAffine(
        aug.rotation,
        aug.translation,
        aug.zoom,
        aug.horizontal_flip,
        # Apart from the dropout layers' seeds (the spec's seed plus the layer's index).
        seed=spec.training.seed + 101,
        brightness=aug.brightness,
        contrast=aug.contrast,
        name="augmentation",
    )


def hidden_dtype(spec: JobSpec) -> str | None:
    """The dtype policy of the hidden layers: ``mixed_float16`` when the spec asks for it, else
    None (the process's default policy, float32)."""
    return "mixed_float16" if spec.training.mixed_precision else None


def build_model(
    spec: JobSpec,
    plan: NetworkPlan,
    raw_shape: tuple[int, ...],
    zca: tuple[Any, Any] | None = None,
    standardization: tuple[Any, Any] | None = None,
) -> keras.Model:
    """The planned network on raw samples of ``raw_shape``: images (pixels 0-255, with or without
    their channel axis), scaled, augmented and whitened by layers; or feature vectors,
    standardized by a Normalization layer holding the training split's ``standardization`` (mean
    and variance per feature). Then the plan's layers and the head.

    The random augmentation layer acts only in training (and is left out of the model a user
    downloads: ``worker.augmentation.without_augmentation``); ZCA whitening is a frozen Dense layer
    holding the transform fitted on the training split, so the saved model whitens its own
    inputs and loads with plain ``keras.models.load_model``.

    Mixed precision is set on each hidden layer, never as the process's global policy, so the
    next job this worker trains is unaffected. Scaling, augmentation and ZCA stay float32 (the
    whitening matrix's values can exceed float16's range) and so does the head, whose loss needs
    float32's precision.
    """
    reg, seed, dtype, sample = spec.regularization, spec.training.seed, hidden_dtype(spec), plan.data.sample
    if not plan.data.images:
        inputs = keras.Input(shape=raw_shape, name="features")
        mean, variance = standardization if standardization is not None else (0.0, 1.0)
        x = keras.layers.Normalization(mean=mean, variance=variance, name="standardize")(inputs)
    else:
        inputs = keras.Input(shape=raw_shape, name="pixels")
        x = keras.layers.Rescaling(1.0 / 255.0, name="scale")(inputs)
    if len(raw_shape) != len(sample):
        x = keras.layers.Reshape(sample, name="channel")(x)
    augmentation = augmentation_layer(spec)
    if augmentation is not None:
        x = augmentation(x)
    whitening = keras.layers.Dense(math.prod(sample), trainable=False, name="zca_whitening") if zca else None
    if whitening is not None:
        x = keras.layers.Flatten(name="zca_flatten")(x)
        x = keras.layers.Reshape(sample, name="zca_shape")(whitening(x))
    if reg.input_dropout:
        x = keras.layers.Dropout(reg.input_dropout, seed=seed, name="input_dropout")(x)
    dense_count = 0
    for index, planned in enumerate(plan.layers):
        layer = planned.layer
        if isinstance(layer, DenseLayer):
            dense_count += 1
            x = _dense(layer, dense_count, spec, dtype)(x)
            dropout = _own_or(layer.dropout, reg.dropout)
            if dropout:
                x = keras.layers.Dropout(
                    dropout, seed=seed + dense_count, dtype=dtype, name=f"dropout_{dense_count}"
                )(x)
        else:
            x = _other_layer(layer, index, spec, dtype)(x)
    head = plan.data.outputs
    activation = "softmax" if plan.data.task == "classification" else "linear"
    outputs = keras.layers.Dense(head, activation=activation, dtype="float32", name="output")(x)
    # Not the spec's name: Keras refuses some characters that a job name may hold.
    model = keras.Model(inputs, outputs, name="keras_job")
    if whitening is not None and zca is not None:
        mean, matrix = zca
        whitening.set_weights([matrix, -(mean @ matrix)])
    return model


def builtin_model(spec: JobSpec, name: str = "mnist", zca: tuple[Any, Any] | None = None) -> keras.Model:
    """The model a worker builds for ``spec`` on a built-in dataset's 28x28 pixels."""
    plan = spec.model.plan(BUILTIN_SHAPES[name].data_shape(spec.model.task))
    return build_model(spec, plan, (28, 28), zca)


def _dense(layer: DenseLayer, number: int, spec: JobSpec, dtype: str | None) -> keras.layers.Layer:
    reg = spec.regularization
    return keras.layers.Dense(
        layer.units,
        activation=layer.activation or spec.model.activation,
        kernel_regularizer=_regularizer(_own_or(layer.l1, reg.l1), _own_or(layer.l2, reg.l2)),
        dtype=dtype,
        name=f"hidden_{number}",
    )


def layer_name(layer: Layer, index: int) -> str:
    """The Keras name of the planned layer at ``index`` (a Dense one is ``hidden_<n>``)."""
    return f"layers_{index}_{layer.type}"


def _other_layer(layer: Layer, index: int, spec: JobSpec, dtype: str | None) -> keras.layers.Layer:
    """Any planned layer but a Dense one, as Keras builds it."""
    reg, seed, name = spec.regularization, spec.training.seed + 1000 + index, layer_name(layer, index)
    if isinstance(layer, Conv2DLayer):
        return keras.layers.Conv2D(
            layer.filters,
            layer.kernel_size,
            strides=layer.strides,
            padding=layer.padding,
            activation=layer.activation or spec.model.activation,
            kernel_regularizer=_regularizer(_own_or(layer.l1, reg.l1), _own_or(layer.l2, reg.l2)),
            dtype=dtype,
            name=name,
        )
    if isinstance(layer, Pool2DLayer):
        pool = keras.layers.MaxPooling2D if layer.type == "max_pool2d" else keras.layers.AveragePooling2D
        return pool(layer.pool_size, strides=layer.strides, padding=layer.padding, dtype=dtype, name=name)
    if isinstance(layer, GlobalPoolLayer):
        if layer.type == "global_max_pool2d":
            return keras.layers.GlobalMaxPooling2D(dtype=dtype, name=name)
        return keras.layers.GlobalAveragePooling2D(dtype=dtype, name=name)
    if isinstance(layer, FlattenLayer):
        return keras.layers.Flatten(dtype=dtype, name=name)
    if isinstance(layer, DropoutLayer):
        return keras.layers.Dropout(layer.rate, seed=seed, dtype=dtype, name=name)
    if isinstance(layer, BatchNormLayer):
        return keras.layers.BatchNormalization(dtype=dtype, name=name)
    if isinstance(layer, GaussianNoiseLayer):
        return keras.layers.GaussianNoise(layer.stddev, seed=seed, dtype=dtype, name=name)
    raise TypeError(f"no Keras layer for {layer.type}")


def make_optimizer(spec: JobSpec) -> keras.optimizers.Optimizer:
    """The spec's optimizer at its learning rate, with dynamic loss scaling under mixed precision
    (float16 gradients would otherwise underflow to zero)."""
    training = spec.training
    if training.optimizer == "sgd":
        optimizer = keras.optimizers.SGD(learning_rate=training.learning_rate, momentum=training.momentum)
    elif training.optimizer == "rmsprop":
        optimizer = keras.optimizers.RMSprop(learning_rate=training.learning_rate, momentum=training.momentum)
    else:
        optimizers = {"adam": keras.optimizers.Adam, "adamw": keras.optimizers.AdamW}
        optimizer = optimizers[training.optimizer](learning_rate=training.learning_rate)
    if training.mixed_precision:
        # Keras adds it by itself only for a model whose own policy is mixed; ours is per layer.
        return keras.optimizers.LossScaleOptimizer(optimizer)
    return optimizer


def compile_model(model: keras.Model, spec: JobSpec, task: Task) -> None:
    """Compile for the task: sparse cross-entropy and accuracy for classes, mean squared error and
    mean absolute error for targets; and the data loss (the loss without the penalty) as a metric."""
    # Keras's loss includes the regularization penalty; this metric is the data loss alone.
    jit_compile = "auto" if spec.training.jit_compile is None else spec.training.jit_compile
    if task == "classification":
        loss, metrics = "sparse_categorical_crossentropy", ["accuracy"]
        data_loss: keras.metrics.Metric = keras.metrics.SparseCategoricalCrossentropy(name="data_loss")
    else:
        loss, metrics = "mean_squared_error", ["mae"]
        data_loss = keras.metrics.MeanSquaredError(name="data_loss")
    model.compile(
        optimizer=make_optimizer(spec), loss=loss, metrics=[*metrics, data_loss], jit_compile=jit_compile
    )
