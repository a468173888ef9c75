"""Datasets as a network sees them: the kind and shape of a sample and what its labels are; the
built-in ones, and an uploaded one as its owner sees it."""

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field, model_validator

from shared.models.network import DataShape, NetworkInfeasible, Task

DatasetKind = Literal["images", "features"]
LabelKind = Literal["classes", "targets"]

MIN_IMAGE_SIDE, MAX_IMAGE_SIDE = 8, 256
MAX_FEATURES = 4096
MIN_CLASSES, MAX_CLASSES = 2, 1000
MAX_TARGETS = 16

FASHION_MNIST_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)


class ClassInfo(BaseModel):
    index: int = Field(description="The label the network predicts for the class.")
    name: str = Field(description="The class's name: as uploaded, or the index itself.")
    count: int | None = Field(None, description="Training samples of the class.")


class TargetInfo(BaseModel):
    name: str
    min: float
    max: float
    mean: float
    std: float


class ColumnInfo(BaseModel):
    name: str
    mean: float
    std: float


class DatasetShape(BaseModel):
    """A dataset's samples and labels, which the network's input and head follow from."""

    kind: DatasetKind = Field(description="`images` (height x width x channels) or `features` (a vector).")
    shape: list[int] = Field(description="One sample's shape: [height, width, channels] or [features].")
    labels: LabelKind = Field(description="`classes` (0..K-1, perhaps named) or `targets` (real values).")
    classes: list[ClassInfo] | None = Field(None, description="The K classes, in label order.")
    targets: list[TargetInfo] | None = Field(None, description="The regression targets' ranges.")

    def data_shape(self, task: Task | None, field: str = "model.task") -> DataShape:
        """What the network trains on with ``task`` (the labels' own when None); a task the labels
        do not allow is ``NetworkInfeasible`` on ``field``."""
        if self.labels == "targets":
            if task == "classification":
                raise NetworkInfeasible(field, "the dataset's labels are real-valued targets: use regression")
            return DataShape(tuple(self.shape), len(self.targets or ()), "regression")
        classes = self.classes or []
        if task == "regression":
            if any(info.name != str(info.index) for info in classes):
                raise NetworkInfeasible(field, "the dataset's classes have names: they cannot be regressed")
            return DataShape(tuple(self.shape), 1, "regression")
        names = tuple(info.name for info in classes)
        return DataShape(tuple(self.shape), len(classes), "classification", names)


def _numbered(count: int) -> list[ClassInfo]:
    return [ClassInfo(index=index, name=str(index)) for index in range(count)]


BUILTIN_SHAPES: dict[str, DatasetShape] = {
    "mnist": DatasetShape(kind="images", shape=[28, 28, 1], labels="classes", classes=_numbered(10)),
    "fashion_mnist": DatasetShape(
        kind="images",
        shape=[28, 28, 1],
        labels="classes",
        classes=[ClassInfo(index=index, name=name) for index, name in enumerate(FASHION_MNIST_CLASSES)],
    ),
}


class DatasetInfo(DatasetShape):
    """An uploaded dataset: its description, stored beside its arrays."""

    id: str
    tenant: str
    name: str | None
    train_samples: int
    test_samples: int
    test_held_out: bool = Field(description="No test set was uploaded: the last tenth of train is it.")
    columns: list[ColumnInfo] | None = Field(
        None, description="Feature vectors: each column's name, mean and standard deviation (training split)."
    )
    stored_bytes: int = Field(0, description="The stored arrays' size, counted against the tenant's quota.")
    created_at: datetime

    @model_validator(mode="before")
    @classmethod
    def _from_earlier_record(cls, data: Any) -> Any:
        """A description stored before datasets had kinds: 28x28 grayscale images, classes 0-9."""
        if isinstance(data, dict) and "image_shape" in data and "kind" not in data:
            counts = data.get("class_counts", {})
            data = {key: value for key, value in data.items() if key not in ("image_shape", "class_counts")}
            data |= {"kind": "images", "shape": [28, 28, 1], "labels": "classes"}
            # Their networks had ten outputs whichever labels they held.
            data["classes"] = [
                {"index": index, "name": str(index), "count": counts.get(str(index), 0)}
                for index in range(10)
            ]
        return data
