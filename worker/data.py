"""Datasets: MNIST-style IDX files read with numpy in one pass each, split, and ZCA fitted."""

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from shared.datasets.idx import IDX_STEMS, IdxError, parse_idx
from shared.errors import TrainingError
from shared.models.jobs import ClassScore

Images = npt.NDArray[Any]
"""Samples: uint8 images (N, H, W) or (N, H, W, C), or float32 feature vectors (N, F)."""
Labels = npt.NDArray[Any]
"""Integer class indices (N,), or float32 targets (N, T)."""
Floats = npt.NDArray[np.float32]

FOLDERS = {"mnist": "mnist", "fashion_mnist": "fashion-mnist"}


@dataclass(frozen=True)
class Arrays:
    """A dataset's training and test samples and labels."""

    x_train: Images
    y_train: Labels
    x_test: Images
    y_test: Labels


@dataclass(frozen=True)
class Split:
    """What one job trains, validates and tests on."""

    x_train: Images
    y_train: Labels
    x_val: Images | None
    y_val: Labels | None
    x_test: Images
    y_test: Labels


def read_idx(path: Path) -> npt.NDArray[np.uint8]:
    """An IDX file (gzip or plain) as an array of the shape its header gives."""
    try:
        return parse_idx(path.read_bytes(), path.name)
    except OSError as exc:
        raise TrainingError(f"{path.name} cannot be read ({exc})") from None
    except IdxError as exc:
        raise TrainingError(str(exc)) from None


def find_idx(folder: Path, stem: str) -> Path | None:
    """``stem.gz`` or ``stem`` in ``folder``, whichever exists."""
    for candidate in (folder / f"{stem}.gz", folder / stem):
        if candidate.is_file():
            return candidate
    return None


def read_idx_dataset(datasets_dir: Path, name: str) -> Arrays | None:
    """The dataset from ``datasets_dir/<folder>/``, or None when any of its four files is missing."""
    folder = datasets_dir / FOLDERS[name]
    paths = {field: find_idx(folder, stem) for field, stem in IDX_STEMS.items()}
    found = {field: path for field, path in paths.items() if path is not None}
    if len(found) != len(IDX_STEMS):
        return None
    arrays = Arrays(**{field: read_idx(path) for field, path in found.items()})
    check_arrays(name, arrays)
    return arrays


def load_upload(path: Path) -> Arrays:
    """An uploaded dataset's arrays, as the API stored them (already checked there)."""
    try:
        with np.load(path, allow_pickle=False) as stored:
            return Arrays(stored["x_train"], stored["y_train"], stored["x_test"], stored["y_test"])
    except OSError:
        raise TrainingError("the uploaded dataset is gone (deleted, or its file is missing)") from None


def check_arrays(name: str, arrays: Arrays) -> None:
    """Refuse a dataset whose parts do not fit together."""
    for images, labels, part in (
        (arrays.x_train, arrays.y_train, "train"),
        (arrays.x_test, arrays.y_test, "test"),
    ):
        if images.ndim != 3 or images.shape[1:] != (28, 28):
            raise TrainingError(f"{name} {part} images have shape {images.shape}, not (N, 28, 28)")
        if labels.shape != (images.shape[0],):
            raise TrainingError(f"{name} {part}: {images.shape[0]} images but {labels.shape[0]} labels")
        if labels.size and int(labels.max()) > 9:
            raise TrainingError(f"{name} {part} labels go up to {int(labels.max())}; classes are 0-9")


def split_dataset(arrays: Arrays, validation_split: float, train_limit: int | None, seed: int) -> Split:
    """The first ``train_limit`` training samples, shuffled by ``seed`` and split for validation."""
    x, y = arrays.x_train[:train_limit], arrays.y_train[:train_limit]
    order = np.random.default_rng(seed).permutation(len(x))
    n_val = round(len(x) * validation_split)
    if n_val >= len(x):
        raise TrainingError(f"validation_split {validation_split} leaves no training samples")
    val, train = order[:n_val], order[n_val:]
    x_val, y_val = (x[val], y[val]) if n_val else (None, None)
    return Split(x[train], y[train], x_val, y_val, arrays.x_test, arrays.y_test)


def fit_zca(images: Images, epsilon: float) -> tuple[Floats, Floats]:
    """ZCA whitening fitted on ``images`` scaled to [0, 1]: the mean and the whitening matrix.

    Whitened inputs are ``(x - mean) @ matrix``; the matrix is symmetric.
    """
    x = images.reshape(len(images), -1).astype(np.float64) / 255.0
    mean = x.mean(axis=0)
    centered = x - mean
    covariance = centered.T @ centered / len(x)
    # The covariance is symmetric: its eigendecomposition is its SVD, at a fraction of the cost
    # (seconds for the 3,072 values of a 32x32 colour image). Rounding can leave eigenvalues a
    # hair below zero: clipped, before epsilon is added.
    eigenvalues, eigenvectors = np.linalg.eigh(covariance)
    matrix = (eigenvectors / np.sqrt(np.clip(eigenvalues, 0.0, None) + epsilon)) @ eigenvectors.T
    return mean.astype(np.float32), matrix.astype(np.float32)


def as_targets(split: Split) -> Split:
    """The split with its integer classes as float targets (N, 1), to be regressed."""

    def targets(labels: Labels) -> Labels:
        return labels.astype(np.float32).reshape(len(labels), -1)

    y_val = None if split.y_val is None else targets(split.y_val)
    return replace(split, y_train=targets(split.y_train), y_val=y_val, y_test=targets(split.y_test))


def feature_statistics(features: Images) -> tuple[Floats, Floats]:
    """Each feature's mean and variance on ``features``, for the model's standardization (a
    constant feature keeps a variance of 1, so it is centred, not divided by zero)."""
    mean = features.mean(axis=0, dtype=np.float64)
    variance = features.var(axis=0, dtype=np.float64)
    return mean.astype(np.float32), np.where(variance > 0, variance, 1.0).astype(np.float32)


def r_squared(targets: Labels, predicted: Floats) -> float:
    """The coefficient of determination of ``predicted`` for ``targets``, over every target."""
    residual = float(((targets - predicted) ** 2).sum())
    total = float(((targets - targets.mean(axis=0)) ** 2).sum())
    return 1.0 - residual / total if total > 0 else 0.0


def confusion_matrix(labels: Labels, predicted: Labels, classes: int) -> npt.NDArray[np.int64]:
    """Test samples per true class (rows) and predicted class (columns)."""
    return np.bincount(
        labels.astype(np.int64) * classes + predicted.astype(np.int64), minlength=classes * classes
    ).reshape(classes, classes)


def class_scores(confusion: npt.NDArray[np.int64], names: tuple[str, ...]) -> list[ClassScore]:
    """Precision, recall and F1 of each class from the confusion matrix (0 where undefined)."""
    true_positive = np.diag(confusion).astype(np.float64)
    predicted, actual = confusion.sum(axis=0), confusion.sum(axis=1)
    precision = np.divide(true_positive, predicted, out=np.zeros_like(true_positive), where=predicted > 0)
    recall = np.divide(true_positive, actual, out=np.zeros_like(true_positive), where=actual > 0)
    total = precision + recall
    f1 = np.divide(2 * precision * recall, total, out=np.zeros_like(total), where=total > 0)
    labels = names or tuple(str(index) for index in range(len(confusion)))
    return [
        ClassScore(
            name=labels[index],
            precision=float(precision[index]),
            recall=float(recall[index]),
            f1=float(f1[index]),
            support=int(actual[index]),
        )
        for index in range(len(confusion))
    ]
