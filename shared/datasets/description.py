"""What an upload's arrays hold, as its description says: the kind and shape of a sample, the
classes with their names and counts or the targets' ranges, and each feature's statistics."""

from typing import Any

import numpy as np

from shared.datasets.formats import UploadedArrays
from shared.models.datasets import ClassInfo, ColumnInfo, DatasetShape, TargetInfo


def describe(arrays: UploadedArrays) -> DatasetShape:
    """The description of ``arrays`` (the training split's statistics)."""
    if arrays.y_train.dtype == np.float32:
        return DatasetShape(
            kind=arrays.kind,
            shape=arrays.sample_shape,
            labels="targets",
            targets=[_target(f"target_{index}", column) for index, column in enumerate(arrays.y_train.T)],
        )
    labels = np.concatenate([arrays.y_train, arrays.y_test])
    count = len(arrays.class_names) if arrays.class_names else int(labels.max()) + 1
    names = arrays.class_names or [str(index) for index in range(count)]
    counts = np.bincount(arrays.y_train, minlength=count)
    return DatasetShape(
        kind=arrays.kind,
        shape=arrays.sample_shape,
        labels="classes",
        classes=[
            ClassInfo(index=index, name=name, count=int(counts[index])) for index, name in enumerate(names)
        ],
    )


def columns(arrays: UploadedArrays) -> list[ColumnInfo] | None:
    """Each feature's name, mean and standard deviation on the training split (None for images)."""
    if arrays.kind != "features":
        return None
    names = arrays.column_names or [f"feature_{index}" for index in range(arrays.x_train.shape[1])]
    means, stds = arrays.x_train.mean(axis=0, dtype=np.float64), arrays.x_train.std(axis=0, dtype=np.float64)
    return [
        ColumnInfo(name=name, mean=float(mean), std=float(std))
        for name, mean, std in zip(names, means, stds, strict=True)
    ]


def _target(name: str, values: Any) -> TargetInfo:
    return TargetInfo(
        name=name,
        min=float(values.min()),
        max=float(values.max()),
        mean=float(values.mean(dtype=np.float64)),
        std=float(values.std(dtype=np.float64)),
    )
