"""Jobs trained for real by a Celery worker process, followed through the API."""

import math
from pathlib import Path
from typing import Any

import httpx
import keras
import numpy as np
import pytest

from tests.helpers import tiny_spec, wait_for
from tests.plain_keras import predict_with_plain_keras

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("worker")]

RECORD_FIELDS = ("loss", "accuracy", "val_loss", "val_accuracy", "regularization_penalty", "learning_rate")


def submit(client: httpx.Client, spec: dict[str, Any]) -> str:
    response = client.post("/v1/jobs", json=spec)
    assert response.status_code == 202, response.text
    job_id: str = response.json()["id"]
    return job_id


def wait_until(client: httpx.Client, job_id: str, *statuses: str, timeout: float = 120) -> dict[str, Any]:
    def reached() -> dict[str, Any] | None:
        job: dict[str, Any] = client.get(f"/v1/jobs/{job_id}").json()
        return job if job["status"] in statuses else None

    return wait_for(reached, timeout=timeout, interval=0.1, what=f"job {job_id} to be {statuses}")


def records(client: httpx.Client, job_id: str, **params: Any) -> dict[str, Any]:
    page: dict[str, Any] = client.get(f"/v1/jobs/{job_id}/metrics", params=params).json()
    return page


def downloaded_predictions(client: httpx.Client, job_id: str, tmp_path: Path) -> tuple[np.ndarray, list[str]]:
    """The job's downloaded model's predictions for three random 28x28 images, made by plain
    Keras, and its layers' class names."""
    response = client.get(f"/v1/jobs/{job_id}/model")
    assert response.status_code == 200
    (tmp_path / "model.keras").write_bytes(response.content)
    images = np.random.default_rng(0).integers(0, 255, size=(3, 28, 28)).astype("uint8")
    return predict_with_plain_keras(tmp_path / "model.keras", images)


@pytest.fixture(scope="module")
def succeeded(client: httpx.Client) -> dict[str, Any]:
    job_id = submit(client, tiny_spec(training={"epochs": 3}, regularization={"l2": 1e-4, "dropout": 0.1}))
    return wait_until(client, job_id, "succeeded", "failed", "cancelled", timeout=180)


def test_a_job_runs_to_success(succeeded: dict[str, Any]) -> None:
    assert (succeeded["status"], succeeded["stop_reason"], succeeded["attempt"]) == (
        "succeeded",
        "completed",
        1,
    )
    assert [t["status"] for t in succeeded["transitions"]] == ["queued", "running", "succeeded"]
    times = [t["at"] for t in succeeded["transitions"]]
    assert times == sorted(times)
    assert succeeded["progress"] == {"epoch": 3, "epochs": 3}
    result = succeeded["result"]
    assert result["stopped_epoch"] == 3
    assert result["best_epoch"] == succeeded["best"]["epoch"]
    assert result["test_accuracy"] > 0.5, "the learnable dataset should be learnt"
    assert succeeded["has_model"] is True


def test_records_are_epochs_one_to_n_with_finite_values(
    client: httpx.Client, succeeded: dict[str, Any]
) -> None:
    page = records(client, succeeded["id"])
    assert [r["epoch"] for r in page["records"]] == [1, 2, 3]
    for record in page["records"]:
        assert all(math.isfinite(record[field]) for field in RECORD_FIELDS)
        assert record["regularization_penalty"] > 0
        assert record["epoch_seconds"] > 0
        assert record["samples_per_second"] > 0
        assert record["attempt"] == 1
        assert record["generalization_gap"] == pytest.approx(record["accuracy"] - record["val_accuracy"])
        assert 0 < record["data_loss"] < record["loss"], "the loss includes the L2 penalty"
        assert 0 < record["val_data_loss"] < record["val_loss"]
    assert page["records"][-1]["loss"] < page["records"][0]["loss"]


def test_after_epoch_returns_only_newer_records(client: httpx.Client, succeeded: dict[str, Any]) -> None:
    job_id = succeeded["id"]
    assert [r["epoch"] for r in records(client, job_id, after_epoch=1)["records"]] == [2, 3]
    empty = records(client, job_id, after_epoch=3)
    assert (empty["records"], empty["last_epoch"], empty["has_more"]) == ([], 3, False)
    page = records(client, job_id, after_epoch=0, limit=1)
    assert ([r["epoch"] for r in page["records"]], page["last_epoch"], page["has_more"]) == ([1], 1, True)


def test_the_downloaded_model_loads_and_predicts(
    client: httpx.Client, succeeded: dict[str, Any], tmp_path: Path
) -> None:
    response = client.get(f"/v1/jobs/{succeeded['id']}/model")
    assert response.status_code == 200
    path = tmp_path / "model.keras"
    path.write_bytes(response.content)
    model = keras.models.load_model(path)
    images = np.random.default_rng(0).integers(0, 255, size=(5, 28, 28)).astype("float32")
    predictions = model.predict(images, verbose=0)
    assert predictions.shape == (5, 10)
    assert np.allclose(predictions.sum(axis=1), 1, atol=1e-5)


def test_early_stopping_ends_before_the_last_epoch(client: httpx.Client) -> None:
    # No epoch can improve the loss by a whole unit: the job stops once patience (0) runs out.
    stopping = {"monitor": "loss", "min_delta": 1.0, "patience": 0, "restore_best_weights": True}
    job_id = submit(client, tiny_spec(training={"epochs": 6}, regularization={"early_stopping": stopping}))
    job = wait_until(client, job_id, "succeeded", "failed", "cancelled")
    assert (job["status"], job["stop_reason"]) == ("succeeded", "early_stopping")
    assert (job["result"]["best_epoch"], job["result"]["stopped_epoch"]) == (1, 2)
    assert (job["best"]["epoch"], job["best"]["monitor"]) == (1, "loss")
    assert [r["epoch"] for r in records(client, job_id)["records"]] == [1, 2]


def test_cancelling_a_running_job_stops_it(client: httpx.Client) -> None:
    spec = tiny_spec(dataset={"train_limit": 1200}, training={"epochs": 200, "batch_size": 8})
    job_id = submit(client, spec)
    wait_for(lambda: records(client, job_id)["last_epoch"] >= 1, timeout=120, what="a first epoch")
    response = client.post(f"/v1/jobs/{job_id}/cancel")
    assert response.status_code in (200, 202)
    assert response.json()["status"] in ("cancelling", "cancelled")
    job = wait_until(client, job_id, "cancelled", "succeeded", "failed", timeout=60)
    assert (job["status"], job["stop_reason"]) == ("cancelled", "cancelled")
    assert [t["status"] for t in job["transitions"]] == ["queued", "running", "cancelling", "cancelled"]
    epochs = [r["epoch"] for r in records(client, job_id)["records"]]
    assert epochs == list(range(1, len(epochs) + 1))
    assert len(epochs) < 200
    assert job["progress"]["epoch"] == len(epochs)
    assert job["has_model"] is True


def test_a_dataset_that_cannot_be_read_fails_the_job_readably(client: httpx.Client) -> None:
    job_id = submit(client, tiny_spec(dataset={"name": "fashion_mnist", "train_limit": None}))
    job = wait_until(client, job_id, "failed", "succeeded", "cancelled")
    assert (job["status"], job["stop_reason"]) == ("failed", "error")
    assert job["error"]["type"] == "training_error"
    assert "train-images-idx3-ubyte.gz cannot be read" in job["error"]["message"]
    assert client.get(f"/v1/jobs/{job_id}/model").status_code == 409


def test_augmentation_and_zca_train_end_to_end(client: httpx.Client, tmp_path: Path) -> None:
    augmentation = {
        "rotation": 0.05,
        "translation": 0.05,
        "zoom": 0.05,
        "horizontal_flip": True,
        "zca_whitening": True,
        "zca_epsilon": 0.1,
    }
    job_id = submit(client, tiny_spec(name="zca/aug: 1", regularization={"augmentation": augmentation}))
    job = wait_until(client, job_id, "succeeded", "failed", "cancelled")
    assert job["status"] == "succeeded", job["error"]
    assert [r["epoch"] for r in records(client, job_id)["records"]] == [1, 2]
    # Trained with the worker's own augmentation layer, saved without it: plain Keras loads it.
    predictions, layers = downloaded_predictions(client, job_id, tmp_path)
    assert predictions.shape == (3, 10)
    assert np.allclose(predictions.sum(axis=1), 1, atol=1e-5)
    assert "RandomAffine" not in layers


def test_a_small_convnet_with_augmentation_trains_and_loads_in_plain_keras(
    client: httpx.Client, tmp_path: Path
) -> None:
    layers = [
        {"type": "conv2d", "filters": 8, "kernel_size": 3},
        {"type": "max_pool2d", "pool_size": 2},
        {"type": "batch_norm"},
        {"type": "conv2d", "filters": 8, "kernel_size": 3, "padding": "same", "l2": 1e-4},
        {"type": "flatten"},  # not a global pooling: the learnable images' label is a position
        {"type": "dropout", "rate": 0.1},
        {"type": "dense", "units": 16},
    ]
    augmentation = {"rotation": 0.02, "translation": 0.05, "zoom": 0.05}
    spec = tiny_spec(
        name="small convnet",
        model={"hidden_layers": None, "layers": layers},
        regularization={"augmentation": augmentation},
        training={"epochs": 3},
    )
    job_id = submit(client, spec)
    job = wait_until(client, job_id, "succeeded", "failed", "cancelled")
    assert job["status"] == "succeeded", job["error"]
    assert [r["epoch"] for r in records(client, job_id)["records"]] == [1, 2, 3]
    assert job["result"]["test_accuracy"] > 0.3, "the learnable dataset is learnt"
    predictions, names = downloaded_predictions(client, job_id, tmp_path)
    assert predictions.shape == (3, 10)
    assert "Conv2D" in names
    assert "RandomAffine" not in names
