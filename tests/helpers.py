"""Test helpers: waiting on real processes, small learnable datasets, tiny specs."""

import gzip
import socket
import struct
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from shared.models.jobs import EpochRecord, utc_now
from shared.models.spec import JobSpec

T = TypeVar("T")

IDX_NAMES = {
    "x_train": "train-images-idx3-ubyte.gz",
    "y_train": "train-labels-idx1-ubyte.gz",
    "x_test": "t10k-images-idx3-ubyte.gz",
    "y_test": "t10k-labels-idx1-ubyte.gz",
}


def wait_for(predicate: Callable[[], T], timeout: float = 60.0, interval: float = 0.1, what: str = "") -> T:
    """Poll ``predicate`` until it returns something truthy, and return that; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or predicate}")
        time.sleep(interval)


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def write_idx(path: Path, array: np.ndarray) -> None:
    """Write a uint8 array as a gzipped IDX file."""
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    with gzip.open(path, "wb") as stream:
        stream.write(header + array.astype(np.uint8).tobytes())


def learnable_images(labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """28x28 noise images with a bright 7x7 block whose position encodes the label."""
    images = rng.integers(0, 60, size=(len(labels), 28, 28), dtype=np.uint8)
    for index, label in enumerate(labels):
        row, col = divmod(int(label), 4)
        images[index, row * 7 + 3 : row * 7 + 10, col * 7 : col * 7 + 7] = 255
    return images


def write_learnable_dataset(folder: Path, n_train: int = 1200, n_test: int = 300, seed: int = 0) -> None:
    """A small MNIST-shaped dataset a tiny network learns in one or two epochs."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    y_train = rng.integers(0, 10, size=n_train, dtype=np.uint8)
    y_test = rng.integers(0, 10, size=n_test, dtype=np.uint8)
    arrays = {
        "x_train": learnable_images(y_train, rng),
        "y_train": y_train,
        "x_test": learnable_images(y_test, rng),
        "y_test": y_test,
    }
    for field, name in IDX_NAMES.items():
        write_idx(folder / name, arrays[field])


def tiny_spec(**overrides: Any) -> dict[str, Any]:
    """A spec that trains in about a second on the learnable dataset, with overrides merged in."""
    spec: dict[str, Any] = {
        "name": "tiny",
        "dataset": {"name": "mnist", "train_limit": 600},
        "model": {"hidden_layers": [32]},
        "training": {"epochs": 2, "batch_size": 32, "learning_rate": 0.003},
    }
    for key, value in overrides.items():
        spec[key] = {**spec[key], **value} if isinstance(value, dict) and key in spec else value
    return spec


def epoch_record(number: int, attempt: int = 1) -> EpochRecord:
    """A plausible record of epoch ``number`` by ``attempt``, for store tests."""
    return EpochRecord(
        epoch=number,
        loss=1.0 / number,
        accuracy=0.5,
        regularization_penalty=0.0,
        learning_rate=0.001,
        epoch_seconds=1.0,
        samples_per_second=100.0,
        attempt=attempt,
        at=utc_now(),
    )


def mnist_model(spec: JobSpec, zca: tuple[Any, Any] | None = None) -> Any:
    """The Keras model a worker builds for ``spec`` on MNIST's 28x28 pixels."""
    from worker.model import builtin_model  # Keras loads only in the tests that build models

    return builtin_model(spec, "mnist", zca)
