"""Jobs on data nobody in this project made: scikit-learn's bundled datasets (they ship inside its
wheel; nothing is downloaded), uploaded as npz and trained through the API, and a small convnet on
a learnable colour image set; each downloaded model loads with plain Keras and predicts on raw
inputs of the dataset's shape."""

import io
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from sklearn import datasets as sklearn_datasets

from tests.api.test_datasets import table_csv
from tests.helpers import tiny_spec, wait_for
from tests.plain_keras import predict_with_plain_keras

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("worker")]


def npz_of(x: np.ndarray, y: np.ndarray, test_share: float = 0.2, seed: int = 0) -> bytes:
    """``x`` and ``y`` shuffled into train and test parts, as an npz."""
    order = np.random.default_rng(seed).permutation(len(x))
    cut = int(len(x) * (1 - test_share))
    train, test = order[:cut], order[cut:]
    buffer = io.BytesIO()
    np.savez(buffer, x_train=x[train], y_train=y[train], x_test=x[test], y_test=y[test])
    return buffer.getvalue()


def uploaded(client: httpx.Client, content: bytes, name: str) -> dict[str, Any]:
    answer = client.post("/v1/datasets", files={"file": (f"{name}.npz", content)}, data={"name": name})
    assert answer.status_code == 201, answer.text
    info: dict[str, Any] = answer.json()
    return info


def trained(client: httpx.Client, spec: dict[str, Any]) -> dict[str, Any]:
    answer = client.post("/v1/jobs", json=spec)
    assert answer.status_code == 202, answer.text
    job_id = answer.json()["id"]

    def ended() -> dict[str, Any] | None:
        job: dict[str, Any] = client.get(f"/v1/jobs/{job_id}").json()
        return job if job["status"] in ("succeeded", "failed", "cancelled") else None

    job = wait_for(ended, timeout=180, interval=0.2, what=f"job {job_id} to end")
    assert job["status"] == "succeeded", job["error"]
    return job


def plain_predictions(client: httpx.Client, job_id: str, inputs: np.ndarray, tmp_path: Path) -> np.ndarray:
    answer = client.get(f"/v1/jobs/{job_id}/model")
    assert answer.status_code == 200
    (tmp_path / "model.keras").write_bytes(answer.content)
    predictions, _ = predict_with_plain_keras(tmp_path / "model.keras", inputs)
    return predictions


def spec_on(dataset_id: str, model: dict[str, Any], epochs: int = 30) -> dict[str, Any]:
    return tiny_spec(
        dataset={"name": dataset_id, "train_limit": None, "validation_split": 0.2},
        model={"hidden_layers": None, **model},
        training={"epochs": epochs, "batch_size": 32, "learning_rate": 0.01},
    )


def test_digits_as_8x8_images_with_a_convnet(client: httpx.Client, tmp_path: Path) -> None:
    digits = sklearn_datasets.load_digits()
    pixels = np.round(digits.images * (255 / 16)).astype(np.uint8)  # 0-16 intensities as 0-255
    info = uploaded(client, npz_of(pixels, digits.target), "digits")
    assert (info["kind"], info["shape"], len(info["classes"])) == ("images", [8, 8, 1], 10)
    layers = [
        {"type": "conv2d", "filters": 16, "kernel_size": 3, "padding": "same"},
        {"type": "max_pool2d", "pool_size": 2},
        {"type": "flatten"},
        {"type": "dense", "units": 32},
    ]
    job = trained(client, spec_on(info["id"], {"layers": layers}, epochs=15))
    assert job["result"]["test_accuracy"] > 0.85
    predictions = plain_predictions(client, job["id"], pixels[:5], tmp_path)
    assert predictions.shape == (5, 10)
    assert np.allclose(predictions.sum(axis=1), 1, atol=1e-5)


def test_breast_cancer_as_30_features_with_two_classes(client: httpx.Client, tmp_path: Path) -> None:
    cancer = sklearn_datasets.load_breast_cancer()
    info = uploaded(client, npz_of(cancer.data, cancer.target), "breast-cancer")
    assert (info["kind"], info["shape"], len(info["classes"])) == ("features", [30], 2)
    radius = info["columns"][0]
    assert abs(radius["mean"] - cancer.data[:, 0].mean()) < 1.0  # the training split's, near the whole's
    job = trained(client, spec_on(info["id"], {"layers": [{"type": "dense", "units": 16}]}))
    assert job["result"]["test_accuracy"] > 0.9, "standardized inside the model, the features are learnt"
    predictions = plain_predictions(client, job["id"], cancer.data[:4].astype(np.float32), tmp_path)
    assert predictions.shape == (4, 2)


def test_wine_with_named_classes(client: httpx.Client, tmp_path: Path) -> None:
    wine = sklearn_datasets.load_wine()
    names = np.array(wine.target_names)[wine.target]  # the labels as the classes' names
    info = uploaded(client, npz_of(wine.data, names), "wine")
    assert [c["name"] for c in info["classes"]] == sorted(wine.target_names)
    assert sum(c["count"] for c in info["classes"]) == info["train_samples"]
    job = trained(client, spec_on(info["id"], {"layers": [{"type": "dense", "units": 16}]}))
    result = job["result"]
    assert result["test_accuracy"] > 0.85
    assert [score["name"] for score in result["class_scores"]] == sorted(wine.target_names)
    assert all(0.0 <= score["f1"] <= 1.0 for score in result["class_scores"])
    assert sum(map(sum, result["confusion_matrix"])) == info["test_samples"]
    assert [sum(row) for row in result["confusion_matrix"]] == [s["support"] for s in result["class_scores"]]
    assert plain_predictions(client, job["id"], wine.data[:3].astype(np.float32), tmp_path).shape == (3, 3)
    regressed = client.post("/v1/jobs", json=spec_on(info["id"], {"task": "regression"}))
    assert regressed.status_code == 422
    assert regressed.json()["errors"][0]["field"] == "model.task"


def test_diabetes_regression(client: httpx.Client, tmp_path: Path) -> None:
    diabetes = sklearn_datasets.load_diabetes()
    targets = diabetes.target.astype(np.float32)
    info = uploaded(client, npz_of(diabetes.data, targets), "diabetes")
    assert (info["kind"], info["labels"], info["classes"]) == ("features", "targets", None)
    assert info["targets"][0]["min"] >= targets.min()
    job = trained(client, spec_on(info["id"], {"layers": [{"type": "dense", "units": 32}]}, epochs=60))
    result = job["result"]
    assert result["test_accuracy"] is None
    assert result["class_scores"] is None
    assert result["test_r2"] > 0.3, result  # a linear model reaches about 0.45 on this data
    assert result["test_rmse"] ** 2 == pytest.approx(result["test_loss"], rel=1e-4)
    records = client.get(f"/v1/jobs/{job['id']}/metrics").json()["records"]
    assert all(r["mae"] > 0 and r["val_mae"] > 0 and r["accuracy"] is None for r in records)
    predictions = plain_predictions(client, job["id"], diabetes.data[:6].astype(np.float32), tmp_path)
    assert predictions.shape == (6, 1)
    stopped = spec_on(info["id"], {"layers": [{"type": "dense", "units": 4}]})
    stopped["regularization"] = {"early_stopping": {"monitor": "val_accuracy"}}
    refused = client.post("/v1/jobs", json=stopped)
    assert refused.status_code == 422
    assert refused.json()["errors"][0]["field"] == "regularization.early_stopping.monitor"


def learnable_colour_images(labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """32x32 colour noise with an 8x8 block whose colour (red, green or blue) is the label."""
    images = rng.integers(0, 80, size=(len(labels), 32, 32, 3), dtype=np.uint8)
    for index, label in enumerate(labels):
        row, col = rng.integers(0, 24, size=2)
        images[index, row : row + 8, col : col + 8, int(label)] = 255
    return images


def test_a_convnet_on_colour_images(client: httpx.Client, tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    labels = rng.integers(0, 3, size=600)
    images = learnable_colour_images(labels, rng)
    info = uploaded(client, npz_of(images, labels), "colours")
    assert info["shape"] == [32, 32, 3]
    layers = [
        {"type": "conv2d", "filters": 8, "kernel_size": 3},
        {"type": "max_pool2d", "pool_size": 2},
        {"type": "conv2d", "filters": 16, "kernel_size": 3},
        {"type": "global_max_pool2d"},
    ]
    spec = spec_on(info["id"], {"layers": layers}, epochs=6)
    spec["regularization"] = {
        "augmentation": {"rotation": 0.05, "horizontal_flip": True, "brightness": 0.05, "contrast": 0.1}
    }
    job = trained(client, spec)
    assert job["result"]["test_accuracy"] > 0.8
    predictions = plain_predictions(client, job["id"], images[:4], tmp_path)
    assert predictions.shape == (4, 3)


def test_a_csv_table_of_wine_trains(client: httpx.Client, tmp_path: Path) -> None:
    wine = sklearn_datasets.load_wine()
    names = np.array(wine.target_names)[wine.target]
    order = np.random.default_rng(1).permutation(len(names))  # the file is sorted by class
    table = table_csv(wine.data[order], names[order], list(wine.feature_names), label="cultivar")
    answer = client.post(
        "/v1/datasets", files={"file": ("wine.csv", table)}, data={"label_column": "cultivar"}
    )
    assert answer.status_code == 201, answer.text
    info = answer.json()
    assert [c["name"] for c in info["columns"]][:2] == ["alcohol", "malic_acid"]
    job = trained(
        client,
        spec_on(
            info["id"],
            {"layers": [{"type": "gaussian_noise", "stddev": 0.1}, {"type": "dense", "units": 16}]},
        ),
    )
    assert job["result"]["test_accuracy"] > 0.8
    assert plain_predictions(client, job["id"], wine.data[:2].astype(np.float32), tmp_path).shape == (2, 3)
