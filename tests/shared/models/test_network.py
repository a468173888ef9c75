"""The network's plan from the dataset's shape: output shapes, parameter counts, and every
network no worker could build refused with the layer that breaks it."""

from typing import Any

import pytest
from pydantic import ValidationError

from shared.models.datasets import BUILTIN_SHAPES, ClassInfo, DatasetShape, TargetInfo
from shared.models.network import DataShape, NetworkInfeasible
from shared.models.presets import PRESETS
from shared.models.spec import ModelSpec

MNIST = BUILTIN_SHAPES["mnist"].data_shape(None)
DIGITS = DataShape((8, 8, 1), 10, "classification")
TABLE = DataShape((30,), 2, "classification")


def plan(model: dict[str, Any], data: DataShape = MNIST) -> Any:
    return ModelSpec.model_validate(model).plan(data)


def refusal(model: dict[str, Any], data: DataShape) -> NetworkInfeasible:
    with pytest.raises(NetworkInfeasible) as refused:
        plan(model, data)
    return refused.value


def test_the_articles_network_on_mnist() -> None:
    planned = plan({})
    assert [layer.output for layer in planned.layers] == [(784,), *[(500,)] * 5]
    assert planned.parameters == 784 * 500 + 500 + 4 * (500 * 500 + 500) + 501 * 10


def test_the_convnet_preset_has_the_keras_examples_shapes_and_count() -> None:
    planned = PRESETS["convnet"].spec().model.plan(MNIST)
    outputs = [layer.output for layer in planned.layers]
    assert outputs == [(26, 26, 32), (13, 13, 32), (11, 11, 64), (5, 5, 64), (1600,), (1600,)]
    assert planned.parameters == 34_826  # as Keras's "simple MNIST convnet" reports


def test_same_padding_and_strides() -> None:
    layers = [
        {"type": "conv2d", "filters": 8, "kernel_size": 5, "padding": "same", "strides": 2},
        {"type": "average_pool2d", "pool_size": 3, "strides": 1, "padding": "same"},
        {"type": "batch_norm"},
        {"type": "global_max_pool2d"},
    ]
    planned = plan({"layers": layers}, DataShape((32, 32, 3), 5, "classification"))
    assert [layer.output for layer in planned.layers] == [(16, 16, 8), (16, 16, 8), (16, 16, 8), (8,)]
    assert planned.parameters == (5 * 5 * 3 + 1) * 8 + 2 * 8 + (8 + 1) * 5


def test_feature_vectors_and_regression() -> None:
    layers = [{"type": "gaussian_noise", "stddev": 0.1}, {"type": "dense", "units": 16}]
    planned = plan({"layers": layers}, DataShape((10,), 2, "regression"))
    assert planned.parameters == 11 * 16 + 17 * 2


@pytest.mark.parametrize(
    ("layers", "data", "field", "words"),
    [
        (
            [
                {"type": "conv2d", "filters": 4, "kernel_size": 5},
                {"type": "conv2d", "filters": 4, "kernel_size": 5},
            ],
            DIGITS,
            "model.layers.1.kernel_size",
            "a 5x5 kernel on a 4x4 input",
        ),
        (
            [{"type": "max_pool2d", "pool_size": 16}, {"type": "flatten"}],
            DIGITS,
            "model.layers.0.pool_size",
            "a 16x16 window on a 8x8 input",
        ),
        (
            [{"type": "flatten"}, {"type": "conv2d", "filters": 4}],
            MNIST,
            "model.layers.1.type",
            "conv2d needs an image",
        ),
        ([{"type": "max_pool2d"}], TABLE, "model.layers.0.type", "not feature vectors"),
        ([{"type": "conv2d", "filters": 4}], MNIST, "model.layers.0", "not a flat one"),
        ([{"type": "dense", "units": 4}], MNIST, "model.layers.0", "add a flatten"),
    ],
)
def test_an_infeasible_network_names_its_layer(
    layers: list[dict[str, Any]], data: DataShape, field: str, words: str
) -> None:
    refused = refusal({"layers": layers}, data)
    assert refused.field == field
    assert words in refused.message


def test_both_forms_at_once_are_refused() -> None:
    with pytest.raises(ValidationError, match="not both"):
        ModelSpec.model_validate({"hidden_layers": [10], "layers": [{"type": "flatten"}]})


def test_an_unknown_layer_type_is_refused_by_the_schema() -> None:
    with pytest.raises(ValidationError) as refused:
        ModelSpec.model_validate({"layers": [{"type": "lstm", "units": 3}]})
    assert refused.value.errors()[0]["loc"][:2] == ("layers", 0)


def test_the_task_follows_the_labels() -> None:
    numbered = DatasetShape(
        kind="features",
        shape=[4],
        labels="classes",
        classes=[ClassInfo(index=i, name=str(i)) for i in range(3)],
    )
    named = numbered.model_copy(
        update={"classes": [ClassInfo(index=0, name="a"), ClassInfo(index=1, name="b")]}
    )
    targets = DatasetShape(
        kind="features",
        shape=[4],
        labels="targets",
        targets=[TargetInfo(name="y", min=0, max=1, mean=0, std=1)],
    )
    assert numbered.data_shape(None) == DataShape((4,), 3, "classification")
    assert numbered.data_shape("regression") == DataShape((4,), 1, "regression")
    assert targets.data_shape(None) == DataShape((4,), 1, "regression")
    for shape, task in ((named, "regression"), (targets, "classification")):
        with pytest.raises(NetworkInfeasible) as refused:
            shape.data_shape(task)  # type: ignore[arg-type]
        assert refused.value.field == "model.task"
