"""The Keras model a spec builds: its size, its regularization, and ZCA across save and load."""

from pathlib import Path
from typing import Any

import keras
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.models.datasets import BUILTIN_SHAPES
from shared.models.network import DataShape, NetworkInfeasible
from shared.models.spec import JobSpec
from shared.storage.local import LocalStore
from tests.helpers import mnist_model
from worker.checkpoints import save_model
from worker.data import fit_zca
from worker.model import build_model, layer_name, make_optimizer
from worker.training import monitored

MNIST = BUILTIN_SHAPES["mnist"].data_shape(None)


def spec_of(**fields: Any) -> JobSpec:
    return JobSpec.model_validate(fields)


def trainable_count(model: keras.Model) -> int:
    return sum(int(np.prod(weight.shape)) for weight in model.trainable_weights)


@pytest.mark.parametrize(
    "layers",
    [[500] * 5, [32], [64, {"units": 16, "l2": 0.01, "dropout": 0.5}]],
    ids=["article", "one", "mixed"],
)
def test_model_size_matches_the_specs_count(layers: list[Any]) -> None:
    spec = spec_of(model={"hidden_layers": layers}, regularization={"dropout": 0.2, "input_dropout": 0.1})
    assert trainable_count(mnist_model(spec)) == spec.model.plan(MNIST).parameters


def test_regularizers_follow_global_and_per_layer_settings() -> None:
    spec = spec_of(
        model={"hidden_layers": [8, {"units": 8, "l1": 0.5}, {"units": 8, "l2": 0.0}]},
        regularization={"l2": 0.01},
    )
    model = mnist_model(spec)
    kinds = [type(model.get_layer(f"hidden_{i}").kernel_regularizer).__name__ for i in (1, 2, 3)]
    assert kinds == ["L2", "L1L2", "NoneType"]
    assert float(sum(keras.ops.convert_to_numpy(loss) for loss in model.losses)) > 0


def test_dropout_layers_only_where_asked() -> None:
    spec = spec_of(
        model={"hidden_layers": [8, {"units": 8, "dropout": 0.0}]}, regularization={"dropout": 0.3}
    )
    names = [layer.name for layer in mnist_model(spec).layers if isinstance(layer, keras.layers.Dropout)]
    assert names == ["dropout_1"]


def test_augmentation_is_inactive_at_inference() -> None:
    augmentation = {"rotation": 0.1, "translation": 0.1, "zoom": 0.1, "horizontal_flip": True}
    model = mnist_model(spec_of(model={"hidden_layers": [8]}, regularization={"augmentation": augmentation}))
    x = np.random.default_rng(0).integers(0, 255, size=(4, 28, 28)).astype("float32")
    assert np.allclose(model.predict(x, verbose=0), model.predict(x, verbose=0))
    trained = keras.ops.convert_to_numpy(model(x, training=True))
    assert not np.allclose(trained, model.predict(x, verbose=0))


def test_zca_layer_survives_save_and_load(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 255, size=(400, 28, 28)).astype(np.uint8)
    spec = spec_of(model={"hidden_layers": [16]}, regularization={"augmentation": {"zca_whitening": True}})
    model = mnist_model(spec, fit_zca(images, 1e-2))
    save_model(model, LocalStore(tmp_path), "job/model.keras")
    loaded = keras.models.load_model(tmp_path / "job" / "model.keras")
    assert loaded.get_layer("zca_whitening").trainable is False
    x = images[:8].astype("float32")
    assert np.allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6)
    whitening = keras.Model(loaded.input, loaded.get_layer("zca_whitening").output)
    mean, matrix = fit_zca(images, 1e-2)
    expected = (x.reshape(8, -1) / 255.0 - mean) @ matrix
    assert np.allclose(whitening.predict(x, verbose=0), expected, atol=1e-3)
    assert not list((tmp_path / "job").glob("*partial*"))


def test_best_epoch_monitor_defaults_to_validation_accuracy() -> None:
    assert monitored(spec_of()) == ("val_accuracy", "max")
    assert monitored(spec_of(dataset={"validation_split": 0})) == ("accuracy", "max")
    stopping = {"early_stopping": {"monitor": "val_loss"}}
    assert monitored(spec_of(regularization=stopping)) == ("val_loss", "min")


SPATIAL_LAYERS = st.one_of(
    st.builds(
        lambda filters, size, strides, padding: {
            "type": "conv2d",
            "filters": filters,
            "kernel_size": size,
            "strides": strides,
            "padding": padding,
        },
        st.integers(1, 6),
        st.integers(1, 5),
        st.integers(1, 3),
        st.sampled_from(["valid", "same"]),
    ),
    st.builds(
        lambda kind, size, padding: {"type": kind, "pool_size": size, "padding": padding},
        st.sampled_from(["max_pool2d", "average_pool2d"]),
        st.integers(1, 3),
        st.sampled_from(["valid", "same"]),
    ),
    st.just({"type": "batch_norm"}),
    st.just({"type": "gaussian_noise", "stddev": 0.1}),
)
FLAT_LAYERS = st.one_of(
    st.builds(lambda units: {"type": "dense", "units": units}, st.integers(1, 12)),
    st.just({"type": "dropout", "rate": 0.2}),
    st.just({"type": "batch_norm"}),
)


@st.composite
def networks(draw: st.DrawFn) -> tuple[list[dict[str, Any]], DataShape]:
    """A network on an image or a feature vector, with a head of 1 to 12 outputs."""
    outputs, task = draw(st.integers(1, 12)), draw(st.sampled_from(["classification", "regression"]))
    if draw(st.booleans()):
        side, channels = draw(st.integers(8, 20)), draw(st.sampled_from([1, 3]))
        spatial = draw(st.lists(SPATIAL_LAYERS, max_size=4))
        closing = draw(st.sampled_from([{"type": "flatten"}, {"type": "global_average_pool2d"}]))
        return [*spatial, closing, *draw(st.lists(FLAT_LAYERS, max_size=3))], DataShape(
            (side, side, channels), outputs, task
        )
    features = draw(st.integers(1, 40))
    return draw(st.lists(FLAT_LAYERS, min_size=1, max_size=4)), DataShape((features,), outputs, task)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(networks())
def test_the_planned_count_and_shapes_are_those_of_the_keras_model(
    drawn: tuple[list[dict[str, Any]], DataShape],
) -> None:
    layers, data = drawn
    spec = spec_of(model={"layers": layers}, regularization={"dropout": 0.1})
    try:
        plan = spec.model.plan(data)
    except NetworkInfeasible:
        return  # a window larger than its input: refused before Keras, tested on its own
    model = build_model(spec, plan, data.sample)
    assert trainable_count(model) == plan.parameters
    if data.images and not any(layer["type"] == "batch_norm" for layer in layers):
        # Nothing untrained in the model (batch norm's moving statistics, a feature vector's
        # standardization): Keras's own count is the plan's.
        assert model.count_params() == plan.parameters
    assert tuple(model.output.shape[1:]) == (data.outputs,)
    for index, planned in enumerate(plan.layers):
        if planned.layer.type != "dense":
            keras_layer = model.get_layer(layer_name(planned.layer, index))
            assert tuple(keras_layer.output.shape[1:]) == planned.output


@pytest.mark.parametrize(("optimizer", "keras_class"), [("sgd", "SGD"), ("rmsprop", "RMSprop")])
def test_momentum_reaches_the_optimizers_that_take_it(optimizer: str, keras_class: str) -> None:
    spec = JobSpec.model_validate({"training": {"optimizer": optimizer, "momentum": 0.9}})
    built = make_optimizer(spec)
    assert type(built).__name__ == keras_class
    assert built.momentum == pytest.approx(0.9)
