"""The job spec: one Pydantic model, used by the API to validate and by workers to re-validate."""

import re
from typing import Annotated, Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, field_validator, model_validator
from pydantic_core import PydanticCustomError

from shared.models.network import (
    Activation,
    DataShape,
    DenseLayer,
    DropoutRate,
    FlattenLayer,
    Layer,
    NetworkPlan,
    Penalty,
    Task,
    Units,
    plan_layers,
)
from shared.models.webhooks import MAX_URL_LENGTH, WebhookEvent, check_url_form

QueueName = Literal["cpu", "gpu"]
Priority = Literal["high", "normal", "low"]
PRIORITIES: tuple[Priority, ...] = ("high", "normal", "low")
"""The priorities, the most urgent first."""
BUILTIN_DATASETS = ("mnist", "fashion_mnist")
DatasetName = Annotated[str, Field(pattern=r"^(mnist|fashion_mnist|[0-9a-f]{24})$")]
Optimizer = Literal["adam", "sgd", "rmsprop", "adamw"]
MOMENTUM_OPTIMIZERS = ("sgd", "rmsprop")
"""The optimizers that take ``training.momentum`` (Keras's SGD and RMSprop; Adam's are its betas)."""
LoggedMetric = Literal[
    "loss", "accuracy", "val_loss", "val_accuracy", "data_loss", "val_data_loss", "mae", "val_mae"
]
CLASSIFICATION_ONLY = ("accuracy", "val_accuracy")
REGRESSION_ONLY = ("mae", "val_mae")
PresetName = Literal[
    "baseline", "l2", "l1", "dropout", "augmentation", "early_stopping", "convnet", "convnet_augmented"
]

TAG_KEY = r"[A-Za-z0-9_.-]{1,64}"
TAG_VALUE_MAX = 128
TagKey = Annotated[str, Field(pattern=f"^{TAG_KEY}$")]
TagValue = Annotated[str, Field(max_length=TAG_VALUE_MAX)]
TagFilter = Annotated[str, Field(pattern=rf"^{TAG_KEY}:[\s\S]{{0,{TAG_VALUE_MAX}}}$")]
"""A job list's tag filter, ``key:value``: a tag a job may have (the value may hold colons)."""

IMAGE_SHAPE = (28, 28)
NUM_CLASSES = 10
MAX_EPOCHS = 1000
MAX_LAYERS = 64


def cross_field_error(field: str, message: str) -> PydanticCustomError:
    """A validation error about several fields, naming the one to change in its context."""
    return PydanticCustomError("cross_field", message, {"field": field})


def present(*fields: str) -> dict[str, Any]:
    """The JSON Schema of an object in which each of ``fields`` is given and not null."""
    return {"required": list(fields), "properties": {field: {"not": {"type": "null"}} for field in fields}}


def one_of_fields(*fields: str) -> dict[str, Any]:
    """A model's JSON Schema extra: exactly one of ``fields`` given, and not null."""
    return {"oneOf": [present(field) for field in fields]}


class SpecModel(BaseModel):
    """Base of every spec part: unknown fields are errors, never silently dropped, and values are
    of the JSON type the OpenAPI document gives (no `"5"` for 5, no 0 for false)."""

    model_config = ConfigDict(extra="forbid", strict=True)


class DatasetSpec(SpecModel):
    name: DatasetName = Field(
        "mnist",
        description="`mnist`, `fashion_mnist`, or the id of a dataset uploaded to `POST /v1/datasets`.",
    )
    validation_split: float = Field(
        0.3,
        ge=0.0,
        le=0.9,
        description="Fraction of the training samples held out for validation (0.3 is 70:30; "
        "0 means no validation). The official test set is used only for the final evaluation.",
    )
    train_limit: int | None = Field(
        None,
        ge=20,
        le=10_000_000,
        description="Use only the first N training samples (before the split), for quick runs.",
    )


class LayerSpec(SpecModel):
    units: Units = Field(description="Units of this Dense layer.")
    l1: Penalty | None = Field(None, description="L1 on this layer's kernel; default: global l1.")
    l2: Penalty | None = Field(None, description="L2 on this layer's kernel; default: global l2.")
    dropout: DropoutRate | None = Field(
        None, description="Dropout after this layer; default: global dropout."
    )


LAYER_OBJECT_TAG = "layer-object"
"""Tag of a layer given as an object; error paths drop it (``hidden_layers.1.units``)."""


def _layer_kind(value: object) -> str:
    return LAYER_OBJECT_TAG if isinstance(value, dict | LayerSpec) else "units"


# Tagged so that an invalid layer reports the errors of the form it was given in, not both.
HiddenLayer = Annotated[
    Annotated[Units, Tag("units")] | Annotated[LayerSpec, Tag(LAYER_OBJECT_TAG)], Discriminator(_layer_kind)
]


DEFAULT_HIDDEN_LAYERS = (500,) * 5
"""The article's network: five hidden layers of 500 units."""


class ModelSpec(SpecModel):
    # What _one_form enforces, in the OpenAPI document: not both forms (none is the default).
    model_config = ConfigDict(json_schema_extra={"not": present("hidden_layers", "layers")})

    hidden_layers: list[HiddenLayer] | None = Field(
        None,
        min_length=1,
        max_length=32,
        description="The short form of a Dense network: its hidden layers, input to output, each a "
        "unit count or an object that overrides the global regularization for that layer. Images are "
        "flattened first. Without it and without `layers`: the article's five layers of 500. Give "
        "this or `layers`, not both.",
    )
    layers: list[Layer] | None = Field(
        None,
        min_length=1,
        max_length=MAX_LAYERS,
        description="The network as a typed list of layers, input to output (`dense`, `conv2d`, "
        "`max_pool2d`, `average_pool2d`, `global_average_pool2d`, `global_max_pool2d`, `flatten`, "
        "`dropout`, `batch_norm`, `gaussian_noise`), checked against the dataset's shape at submit "
        "time; the head (softmax over the classes, or linear outputs for regression) follows from "
        "the labels. Give this or `hidden_layers`, not both.",
    )
    activation: Activation = Field("relu", description="Activation of every hidden layer.")
    task: Task | None = Field(
        None,
        description="`classification` or `regression`; by default what the labels say (integer "
        "labels and class names: classification, real-valued targets: regression). Integer labels "
        "may also be regressed.",
    )

    @model_validator(mode="after")
    def _one_form(self) -> Self:
        if self.layers is not None and self.hidden_layers is not None:
            raise cross_field_error(
                "model.layers", "give either hidden_layers (a Dense stack) or layers, not both"
            )
        if self.layers is None and self.hidden_layers is None:
            # A default, not a field the client set: bypasses pydantic's record of set fields.
            object.__setattr__(self, "hidden_layers", list[HiddenLayer](DEFAULT_HIDDEN_LAYERS))
        return self

    def layer_units(self) -> list[int]:
        """The unit count of each hidden layer of the short form (none for ``layers``)."""
        return [layer if isinstance(layer, int) else layer.units for layer in self.hidden_layers or []]

    def spec_layers(self, images: bool) -> list[tuple[str | None, Layer]]:
        """The network's layers with their field paths: ``layers`` as given, or the short form as
        Dense layers (after a flatten the spec implies, for images)."""
        if self.layers is not None:
            return [(f"model.layers.{index}", layer) for index, layer in enumerate(self.layers)]
        implied: list[tuple[str | None, Layer]] = [(None, FlattenLayer(type="flatten"))] if images else []
        return implied + [
            (f"model.hidden_layers.{index}", _dense(layer))
            for index, layer in enumerate(self.hidden_layers or [])
        ]

    def plan(self, data: DataShape) -> NetworkPlan:
        """Every layer's output shape and the parameter count on ``data``; ``NetworkInfeasible``
        naming the layer that cannot be built."""
        return plan_layers(self.spec_layers(data.images), data)


def _dense(layer: int | LayerSpec) -> DenseLayer:
    if isinstance(layer, int):
        return DenseLayer(type="dense", units=layer)
    return DenseLayer(type="dense", units=layer.units, l1=layer.l1, l2=layer.l2, dropout=layer.dropout)


class AugmentationSpec(SpecModel):
    rotation: float = Field(
        0.0, ge=0.0, le=0.5, description="Random rotation, as a fraction of a full turn (0.1 = 36°)."
    )
    translation: float = Field(
        0.0, ge=0.0, le=0.5, description="Random shift, as a fraction of the image's height and width."
    )
    zoom: float = Field(0.0, ge=0.0, le=0.9, description="Random zoom in or out by up to this fraction.")
    horizontal_flip: bool = Field(False, description="Randomly mirror images left to right.")
    brightness: float = Field(
        0.0, ge=0.0, le=1.0, description="Random brightness shift, as a fraction of the pixel range."
    )
    contrast: float = Field(
        0.0,
        ge=0.0,
        le=0.9,
        description="Random contrast change about each image's mean, up to this fraction.",
    )
    zca_whitening: bool = Field(
        False,
        description="Whiten inputs with ZCA fitted on the training split; the fitted transform is "
        "a fixed layer inside the saved model.",
    )
    zca_epsilon: float = Field(1e-6, gt=0.0, le=1.0, description="Added to eigenvalues before whitening.")


class EarlyStoppingSpec(SpecModel):
    monitor: LoggedMetric = Field("val_accuracy", description="The logged metric to watch.")
    mode: Literal["auto", "min", "max"] = Field(
        "auto", description="Whether the metric should fall or rise; auto infers it from the name."
    )
    patience: int = Field(2, ge=0, le=1000, description="Epochs without improvement before stopping.")
    min_delta: float = Field(0.0, ge=0.0, le=1.0, description="Smallest change that counts as better.")
    restore_best_weights: bool = Field(
        True, description="End with the weights of the best epoch rather than the last."
    )
    start_from_epoch: int = Field(
        0, ge=0, le=1000, description="Epochs to train before improvement is judged."
    )

    def resolved_mode(self) -> Literal["min", "max"]:
        """``min`` for losses, ``max`` for accuracies, unless the spec says otherwise."""
        if self.mode != "auto":
            return self.mode
        return "max" if self.monitor.endswith("accuracy") else "min"


class RegularizationSpec(SpecModel):
    l1: Penalty = Field(0.0, description="L1 penalty on every hidden kernel.")
    l2: Penalty = Field(0.0, description="L2 penalty on every hidden kernel (with l1: L1L2).")
    dropout: DropoutRate = Field(0.0, description="Dropout rate after every hidden layer.")
    input_dropout: DropoutRate = Field(0.0, description="Dropout rate on the input.")
    augmentation: AugmentationSpec = Field(
        default_factory=AugmentationSpec, description="Training-time image transforms and ZCA whitening."
    )
    early_stopping: EarlyStoppingSpec | None = Field(
        None, description="Stop when the monitored metric stops improving; null for none."
    )


class TrainingSpec(SpecModel):
    # What JobSpec's check enforces, in the OpenAPI document: momentum needs an optimizer that takes it.
    model_config = ConfigDict(
        json_schema_extra={
            "anyOf": [
                {"required": ["optimizer"], "properties": {"optimizer": {"enum": list(MOMENTUM_OPTIMIZERS)}}},
                {"properties": {"momentum": {"const": 0}}},
            ]
        },
    )

    epochs: int = Field(
        10, ge=1, le=MAX_EPOCHS, description="Epochs to train (early stopping may end sooner)."
    )
    batch_size: int = Field(128, ge=1, le=65536, description="Samples per gradient step.")
    optimizer: Optimizer = Field("adam", description="`adam`, `sgd`, `rmsprop` or `adamw`.")
    learning_rate: float = Field(0.001, gt=0.0, le=10.0, description="The optimizer's learning rate.")
    momentum: float = Field(0.0, ge=0.0, lt=1.0, description="Momentum; only for `sgd` and `rmsprop`.")
    seed: int = Field(128, ge=0, le=2**31 - 1, description="Seed of weights, split and shuffling.")
    mixed_precision: bool = Field(
        False,
        description="Compute the hidden layers in float16 with float32 weights and a float32 output "
        "(Keras `mixed_float16`, with loss scaling): faster on GPUs with tensor cores, at a small cost "
        "in precision. Refused on the `cpu` queue.",
    )
    jit_compile: bool | None = Field(
        None,
        description="Compile the training step with XLA (TensorFlow, JAX) or torch.compile (PyTorch); "
        "null leaves Keras's default.",
    )


MAX_GPU_MEMORY_MB = 1_048_576
"""A terabyte: more than any GPU holds."""


class ResourcesSpec(SpecModel):
    queue: QueueName | None = Field(
        None, description="`gpu` or `cpu` workers; the service's default queue when absent."
    )
    max_runtime_seconds: int = Field(
        3600, ge=1, description="Training stops at the next batch after this many seconds."
    )
    priority: Priority = Field(
        "normal",
        description="`high` jobs start before `normal` ones, and those before `low` ones; among jobs "
        "of one priority, tenants take turns. A `high` or `normal` job that waits may preempt a "
        "running job of a lower priority.",
    )
    preemptible: bool = Field(
        True,
        description="Whether a waiting job of a higher priority may stop this one at an epoch end "
        "(it resumes later from that epoch's checkpoint).",
    )
    gpu_memory_mb: int | None = Field(
        None,
        ge=1,
        le=MAX_GPU_MEMORY_MB,
        description="The GPU memory (MiB) the job needs: it goes only to a worker slot that has that "
        "much (a GPU shared by several slots gives each a part); on the gpu queue only.",
    )


_PORT = r"0*(?:6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[0-9]{1,4})"
WEBHOOK_URL_PATTERN = (
    r"^[Hh][Tt][Tt][Pp][Ss]?://(?:[^\s\x00-\x1f/?#@\[\]:]+|\[[0-9A-Fa-f:.]+\])"
    rf"(?::(?:{_PORT})?)?(?:[/?#][^\s\x00-\x1f]*)?$"
)
"""An http(s) URL with a host, an optional port from 0 to 65535, no credentials and no spaces or
control characters: what ``check_url_form`` takes, as the OpenAPI document can say it (an IPv6
literal's brackets are checked by ``check_url_form`` alone)."""
_WEBHOOK_URL = re.compile(WEBHOOK_URL_PATTERN)


class NotifySpec(SpecModel):
    url: str = Field(
        max_length=MAX_URL_LENGTH,
        # Checked by _check_url, after check_url_form has named what a URL lacks.
        json_schema_extra={"pattern": WEBHOOK_URL_PATTERN},
        description="Where the service POSTs the job's events: http or https, without credentials; "
        "each request is signed with the tenant's webhook secret.",
    )
    events: list[WebhookEvent] = Field(
        default_factory=lambda: list[WebhookEvent](["state"]),
        min_length=1,
        max_length=2,
        description="`state` (every status change) and/or `epoch` (every epoch record).",
    )

    @field_validator("url")
    @classmethod
    def _check_url(cls, url: str) -> str:
        check_url_form(url)
        if not _WEBHOOK_URL.fullmatch(url):
            raise ValueError("the URL must read http(s)://host[:port] and then a path, a query or nothing")
        return url

    @field_validator("events")
    @classmethod
    def _distinct_events(cls, events: list[WebhookEvent]) -> list[WebhookEvent]:
        return list(dict.fromkeys(events))


class JobSpec(SpecModel):
    """A training job: data, network, regularization, training loop and resources."""

    name: str | None = Field(
        None, min_length=1, max_length=100, description="A label for people; need not be unique."
    )
    tags: dict[TagKey, TagValue] = Field(
        default_factory=dict, max_length=16, description="Labels to filter the job list by."
    )
    dataset: DatasetSpec = Field(default_factory=DatasetSpec, description="What to train on.")
    model: ModelSpec = Field(default_factory=ModelSpec, description="The network.")
    regularization: RegularizationSpec = Field(
        default_factory=RegularizationSpec, description="L1, L2, dropout, augmentation, early stopping."
    )
    training: TrainingSpec = Field(default_factory=TrainingSpec, description="The training loop.")
    resources: ResourcesSpec = Field(default_factory=ResourcesSpec, description="Where and how long to run.")
    notify: NotifySpec | None = Field(None, description="A webhook for the job's events; null for none.")

    @model_validator(mode="after")
    def _check_consistent(self) -> Self:
        stopping = self.regularization.early_stopping
        if stopping and stopping.monitor.startswith("val_") and self.dataset.validation_split == 0:
            raise cross_field_error(
                "regularization.early_stopping.monitor",
                f"monitor {stopping.monitor!r} needs a validation split: set "
                "dataset.validation_split above 0 or monitor a training metric",
            )
        if self.training.momentum > 0 and self.training.optimizer not in MOMENTUM_OPTIMIZERS:
            raise cross_field_error(
                "training.momentum",
                f"momentum applies only to the sgd and rmsprop optimizers, not {self.training.optimizer!r}",
            )
        return self


class JobSubmission(JobSpec):
    """What `POST /v1/jobs` takes: a spec, or a preset name with overrides in the spec's shape."""

    preset: PresetName | None = Field(
        None, description="Start from this preset (see `GET /v1/presets`); other fields override it."
    )
