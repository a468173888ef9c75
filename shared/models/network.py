"""The network of a job as a typed list of layers, and its plan: every layer's output shape and
the trainable parameter count, worked out from the dataset's shape without Keras, so that a
network no worker could build is refused at submit time with the layer that breaks it.

The worker builds exactly the planned layers (``worker.model``), and a property test compares
the planned count with Keras's.
"""

import dataclasses
import math
from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

Activation = Literal["relu", "elu", "gelu", "selu", "swish", "tanh", "sigmoid", "leaky_relu"]
Padding = Literal["valid", "same"]
Task = Literal["classification", "regression"]

Penalty = Annotated[float, Field(ge=0.0, le=1.0)]
DropoutRate = Annotated[float, Field(ge=0.0, le=0.95)]
Units = Annotated[int, Field(ge=1, le=8192)]
Shape = tuple[int, ...]


class LayerModel(BaseModel):
    """Base of every layer: unknown fields are errors, never silently dropped."""

    model_config = ConfigDict(extra="forbid", strict=True)


class DenseLayer(LayerModel):
    type: Literal["dense"]
    units: Units = Field(description="Units of this Dense layer.")
    activation: Activation | None = Field(None, description="Default: the model's activation.")
    l1: Penalty | None = Field(None, description="L1 on this layer's kernel; default: global l1.")
    l2: Penalty | None = Field(None, description="L2 on this layer's kernel; default: global l2.")
    dropout: DropoutRate | None = Field(
        None, description="Dropout after this layer; default: global dropout."
    )


class Conv2DLayer(LayerModel):
    type: Literal["conv2d"]
    filters: int = Field(ge=1, le=2048, description="Output channels.")
    kernel_size: int = Field(3, ge=1, le=15, description="Height and width of the (square) kernel.")
    strides: int = Field(1, ge=1, le=8, description="Step of the kernel, in both directions.")
    padding: Padding = Field(
        "valid", description="`valid` (no padding) or `same` (output size input/stride)."
    )
    activation: Activation | None = Field(None, description="Default: the model's activation.")
    l1: Penalty | None = Field(None, description="L1 on this layer's kernel; default: global l1.")
    l2: Penalty | None = Field(None, description="L2 on this layer's kernel; default: global l2.")


class Pool2DLayer(LayerModel):
    type: Literal["max_pool2d", "average_pool2d"]
    pool_size: int = Field(2, ge=1, le=16, description="Height and width of the (square) window.")
    strides: int | None = Field(None, ge=1, le=16, description="Step of the window; default: pool_size.")
    padding: Padding = Field("valid", description="`valid` or `same`.")


class GlobalPoolLayer(LayerModel):
    type: Literal["global_average_pool2d", "global_max_pool2d"]


class FlattenLayer(LayerModel):
    type: Literal["flatten"]


class DropoutLayer(LayerModel):
    type: Literal["dropout"]
    rate: DropoutRate = Field(description="Fraction of the inputs dropped in training.")


class BatchNormLayer(LayerModel):
    type: Literal["batch_norm"]


class GaussianNoiseLayer(LayerModel):
    type: Literal["gaussian_noise"]
    stddev: float = Field(gt=0.0, le=10.0, description="Standard deviation of the noise added in training.")


Layer = Annotated[
    DenseLayer
    | Conv2DLayer
    | Pool2DLayer
    | GlobalPoolLayer
    | FlattenLayer
    | DropoutLayer
    | BatchNormLayer
    | GaussianNoiseLayer,
    Field(discriminator="type"),
]
LAYER_TYPES = (
    "dense",
    "conv2d",
    "max_pool2d",
    "average_pool2d",
    "global_average_pool2d",
    "global_max_pool2d",
    "flatten",
    "dropout",
    "batch_norm",
    "gaussian_noise",
)


@dataclass(frozen=True)
class DataShape:
    """What a network's input and head follow from: one sample's shape ((H, W, C) for images,
    (F,) for feature vectors) and the number of outputs (K classes, or T regression targets)."""

    sample: Shape
    outputs: int
    task: Task
    class_names: tuple[str, ...] = dataclasses.field(default=(), compare=False)
    """Classification: the classes' names, in label order (results name them)."""

    @property
    def images(self) -> bool:
        return len(self.sample) == 3


@dataclass(frozen=True)
class PlannedLayer:
    """A layer of the plan: where it stands in the spec (None for one the spec implies), what it
    is, and the shape it outputs."""

    field: str | None
    layer: Layer
    output: Shape
    parameters: int


@dataclass(frozen=True)
class NetworkPlan:
    layers: list[PlannedLayer]
    head_inputs: int
    data: DataShape

    @property
    def parameters(self) -> int:
        """Trainable parameters: the layers' and the head's (Keras's trainable weights)."""
        return sum(layer.parameters for layer in self.layers) + (self.head_inputs + 1) * self.data.outputs


class NetworkInfeasible(ValueError):
    """A layer cannot be built on its input: ``field`` names it, ``message`` says why."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field, self.message = field, message


def shape_text(shape: Shape) -> str:
    return "x".join(str(size) for size in shape)


def plan_layers(layers: list[tuple[str | None, Layer]], data: DataShape) -> NetworkPlan:
    """Each layer's output shape from ``data``'s sample shape, in order; ``NetworkInfeasible``
    for the first layer that cannot take its input, or an output that is not flat before the
    head."""
    shape, planned = data.sample, []
    for field, layer in layers:
        output, parameters = _layer_output(field or "model", layer, shape)
        planned.append(PlannedLayer(field, layer, output, parameters))
        shape = output
    if len(shape) != 1:
        last = next((field for field, _ in reversed(layers) if field), "model.layers")
        raise NetworkInfeasible(
            last,
            f"the network ends on a {shape_text(shape)} output, not a flat one: add a flatten or "
            "global_average_pool2d layer before the head",
        )
    return NetworkPlan(planned, shape[0], data)


def _layer_output(field: str, layer: Layer, shape: Shape) -> tuple[Shape, int]:
    if isinstance(layer, DenseLayer):
        if len(shape) != 1:
            raise NetworkInfeasible(
                field,
                f"a dense layer on a {shape_text(shape)} input: add a flatten or global_average_pool2d "
                "layer before it",
            )
        return (layer.units,), (shape[0] + 1) * layer.units
    if isinstance(layer, FlattenLayer):
        return (math.prod(shape),), 0
    if isinstance(layer, DropoutLayer | GaussianNoiseLayer):
        return shape, 0
    if isinstance(layer, BatchNormLayer):
        return shape, 2 * shape[-1]  # gamma and beta; the moving statistics are not trained
    if len(shape) != 3:
        where = "feature vectors" if len(shape) == 1 else f"a {shape_text(shape)} input"
        raise NetworkInfeasible(
            f"{field}.type", f"{layer.type} needs an image (height x width x channels), not {where}"
        )
    height, width, channels = shape
    if isinstance(layer, GlobalPoolLayer):
        return (channels,), 0
    if isinstance(layer, Conv2DLayer):
        size, strides, filters = layer.kernel_size, layer.strides, layer.filters
        kind, key, parameters = "kernel", "kernel_size", (size * size * channels + 1) * filters
    else:
        size, strides, filters = layer.pool_size, layer.strides or layer.pool_size, channels
        kind, key, parameters = "window", "pool_size", 0
    if layer.padding == "same":
        return (math.ceil(height / strides), math.ceil(width / strides), filters), parameters
    if size > height or size > width:
        raise NetworkInfeasible(
            f"{field}.{key}", f"a {size}x{size} {kind} on a {height}x{width} input (padding valid)"
        )
    return ((height - size) // strides + 1, (width - size) // strides + 1, filters), parameters


class LayerSummary(BaseModel):
    field: str | None = Field(description="Where the layer stands in the spec; null for one it implies.")
    type: str
    output_shape: list[int]
    parameters: int = Field(description="Trainable parameters of the layer.")


class NetworkSummary(BaseModel):
    """A job's network as planned on its dataset at submit time."""

    input_shape: list[int] = Field(description="One sample: [height, width, channels] or [features].")
    task: Task
    outputs: int = Field(description="The head's outputs: the classes, or the regression targets.")
    layers: list[LayerSummary] = Field(description="The layers before the head, input to output.")
    parameters: int = Field(description="Trainable parameters, the head's included.")

    @classmethod
    def of(cls, plan: NetworkPlan) -> "NetworkSummary":
        return cls(
            input_shape=list(plan.data.sample),
            task=plan.data.task,
            outputs=plan.data.outputs,
            layers=[
                LayerSummary(
                    field=layer.field,
                    type=layer.layer.type,
                    output_shape=list(layer.output),
                    parameters=layer.parameters,
                )
                for layer in plan.layers
            ],
            parameters=plan.parameters,
        )

    def text(self) -> str:
        """One line: input, each layer's type and output shape, and the head."""
        steps = [shape_text(tuple(self.input_shape))]
        steps += [f"{layer.type} {shape_text(tuple(layer.output_shape))}" for layer in self.layers]
        head = "softmax" if self.task == "classification" else "linear"
        return (
            " -> ".join([*steps, f"{head} {self.outputs}"])
            + f" ({self.parameters:,} parameters, {self.task})"
        )
