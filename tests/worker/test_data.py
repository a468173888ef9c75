"""The IDX reader, the split and ZCA whitening, on files the test writes and on the real MNIST."""

from pathlib import Path

import numpy as np
import pytest

from shared.errors import TrainingError
from tests.conftest import REAL_DATASETS_DIR
from tests.helpers import write_idx, write_learnable_dataset
from worker.data import (
    Arrays,
    class_scores,
    confusion_matrix,
    fit_zca,
    read_idx,
    read_idx_dataset,
    split_dataset,
)


def test_idx_round_trip(tmp_path: Path) -> None:
    images = np.arange(2 * 28 * 28, dtype=np.uint32).reshape(2, 28, 28).astype(np.uint8)
    write_idx(tmp_path / "x.gz", images)
    assert np.array_equal(read_idx(tmp_path / "x.gz"), images)


def test_plain_idx_files_are_read_too(tmp_path: Path) -> None:
    labels = np.array([3, 1, 4], dtype=np.uint8)
    (tmp_path / "y").write_bytes(bytes([0, 0, 8, 1, 0, 0, 0, 3]) + labels.tobytes())
    assert read_idx(tmp_path / "y").tolist() == [3, 1, 4]


@pytest.mark.parametrize(
    "content", [b"", b"\x00\x00\x0d\x01\x00\x00\x00\x01\x00", bytes([0, 0, 8, 1, 0, 0, 0, 5, 1, 2])]
)
def test_malformed_idx_is_a_training_error(tmp_path: Path, content: bytes) -> None:
    (tmp_path / "bad").write_bytes(content)
    with pytest.raises(TrainingError):
        read_idx(tmp_path / "bad")


def test_missing_files_mean_no_dataset(tmp_path: Path) -> None:
    assert read_idx_dataset(tmp_path, "mnist") is None


def test_learnable_dataset_reads_with_its_shapes(tmp_path: Path) -> None:
    write_learnable_dataset(tmp_path / "mnist", n_train=50, n_test=10)
    arrays = read_idx_dataset(tmp_path, "mnist")
    assert arrays is not None
    assert (arrays.x_train.shape, arrays.y_train.shape, arrays.x_test.shape) == (
        (50, 28, 28),
        (50,),
        (10, 28, 28),
    )


def test_split_is_seeded_disjoint_and_limited() -> None:
    x = np.arange(100, dtype=np.uint8).reshape(100, 1, 1).repeat(28, 1).repeat(28, 2)
    arrays = Arrays(x, np.arange(100, dtype=np.uint8) % 10, x[:5], np.zeros(5, np.uint8))
    split = split_dataset(arrays, validation_split=0.3, train_limit=50, seed=1)
    assert split.x_val is not None
    assert (len(split.x_train), len(split.x_val)) == (35, 15)
    seen = set(split.x_train[:, 0, 0]) | set(split.x_val[:, 0, 0])
    assert seen == set(range(50))
    again = split_dataset(arrays, validation_split=0.3, train_limit=50, seed=1)
    assert np.array_equal(again.x_train, split.x_train)


def test_no_validation_split_means_no_validation_data() -> None:
    x = np.zeros((10, 28, 28), np.uint8)
    split = split_dataset(Arrays(x, np.zeros(10, np.uint8), x, np.zeros(10, np.uint8)), 0.0, None, 0)
    assert split.x_val is None
    assert len(split.x_train) == 10


def test_zca_whitens_to_identity_covariance() -> None:
    rng = np.random.default_rng(0)
    mixing = rng.normal(size=(784, 784)) * 0.05
    images = np.clip(rng.normal(size=(3000, 784)) @ mixing * 40 + 128, 0, 255).astype(np.uint8)
    mean, matrix = fit_zca(images.reshape(-1, 28, 28), epsilon=1e-6)
    white = (images / 255.0 - mean) @ matrix
    covariance = white.T @ white / len(white)
    assert np.allclose(white.mean(axis=0), 0, atol=1e-4)
    assert np.allclose(np.diag(covariance)[:50], 1, atol=0.05)
    assert np.allclose(matrix, matrix.T, atol=1e-4)


@pytest.fixture(scope="module")
def mnist() -> Arrays:
    if not REAL_DATASETS_DIR:
        pytest.skip("DATASETS_DIR is not set (README's test command sets it)")
    arrays = read_idx_dataset(Path(REAL_DATASETS_DIR), "mnist")
    assert arrays is not None, f"no MNIST IDX files under {REAL_DATASETS_DIR}"
    return arrays


def test_real_mnist_matches_its_published_figures(mnist: Arrays) -> None:
    assert mnist.x_train.shape == (60_000, 28, 28)
    assert mnist.x_test.shape == (10_000, 28, 28)
    assert mnist.y_train[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    counts = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    assert np.bincount(mnist.y_train).tolist() == counts
    scaled = mnist.x_train / 255.0
    assert (round(scaled.mean(), 4), round(scaled.std(), 4)) == (0.1307, 0.3081)


def test_real_fashion_mnist_labels() -> None:
    if not REAL_DATASETS_DIR:
        pytest.skip("DATASETS_DIR is not set (README's test command sets it)")
    arrays = read_idx_dataset(Path(REAL_DATASETS_DIR), "fashion_mnist")
    assert arrays is not None
    assert arrays.y_train[:10].tolist() == [9, 0, 0, 3, 0, 2, 7, 2, 5, 5]
    assert np.bincount(arrays.y_test).tolist() == [1000] * 10


def test_class_scores_match_scikit_learns() -> None:
    from sklearn.metrics import confusion_matrix as reference_matrix
    from sklearn.metrics import precision_recall_fscore_support

    rng = np.random.default_rng(3)
    labels, predicted = rng.integers(0, 4, 200), rng.integers(0, 4, 200)
    predicted[labels == 3] = 3  # one class always right
    predicted[predicted == 2] = 1  # one class never predicted: its precision is 0, not NaN
    confusion = confusion_matrix(labels, predicted, 4)
    assert confusion.tolist() == reference_matrix(labels, predicted, labels=range(4)).tolist()
    scores = class_scores(confusion, ("a", "b", "c", "d"))
    precision, recall, f1, support = precision_recall_fscore_support(
        labels, predicted, labels=range(4), zero_division=0
    )
    assert [s.name for s in scores] == ["a", "b", "c", "d"]
    assert np.allclose([s.precision for s in scores], precision)
    assert np.allclose([s.recall for s in scores], recall)
    assert np.allclose([s.f1 for s in scores], f1)
    assert [s.support for s in scores] == support.tolist()
