"""The same worker code on Keras's PyTorch backend: a worker with ``KERAS_BACKEND=torch`` on the gpu
queue trains jobs end to end, mixed precision included.

The stack here (its worker, its API and its keys) lives under a key prefix of its own, so its
gpu queue is not the one the other tests leave jobs waiting on, and it runs only during these
tests.
"""

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import keras
import numpy as np
import pytest

from cli.worker_layout import celery_argv
from shared.auth.keys import KeyStore
from shared.ops.registry import WorkerRegistry
from shared.redis.connection import connect
from shared.redis.keys import RedisKeys
from shared.settings import Settings
from tests.conftest import delete_prefixed, running_api, stop
from tests.helpers import tiny_spec, wait_for
from tests.plain_keras import predict_with_plain_keras

pytestmark = pytest.mark.e2e

FINAL = {"succeeded", "failed", "cancelled"}


@pytest.fixture(scope="module")
def torch_stack(settings_env: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    """A PyTorch-backend worker on the gpu queue and an API, under a key prefix of their own."""
    prefix = f"{settings_env.key_prefix}-torch{uuid.uuid4().hex[:6]}"
    env = {**os.environ, "KEY_PREFIX": prefix, "KERAS_BACKEND": "torch"}
    logs = tmp_path_factory.mktemp("torch-logs")
    name = f"torch-{prefix}@localhost"
    with (logs / "worker.log").open("wb") as log:
        worker = subprocess.Popen(celery_argv("gpu", name), env=env, stdout=log, stderr=log)
    redis = connect(settings_env)
    registry = WorkerRegistry(redis, RedisKeys(prefix))
    try:
        wait_for(lambda: any(w.name == name for w in registry.live()), timeout=180, what="the torch worker")
        _, key = KeyStore(redis, RedisKeys(prefix)).create("torch-tests", "tests")
        with (
            running_api({**env, "KERAS_BACKEND": "tensorflow"}, logs / "api.log") as url,
            httpx.Client(base_url=url, timeout=30, headers={"Authorization": f"Bearer {key}"}) as client,
        ):
            yield client
    finally:
        stop(worker)
        if os.environ.get("KJOBS_TEST_SHOW_WORKER_LOG"):
            sys.stderr.write(Path(logs / "worker.log").read_text())
        delete_prefixed(redis, prefix)


def run_to_the_end(client: httpx.Client, spec: dict[str, Any]) -> dict[str, Any]:
    response = client.post("/v1/jobs", json=spec)
    assert response.status_code == 202, response.text
    job_id = response.json()["id"]
    return wait_for(
        lambda: (job := client.get(f"/v1/jobs/{job_id}").json())["status"] in FINAL and job,
        timeout=300,
        what=f"job {job_id} to end",
    )


def test_a_job_trains_on_the_torch_backend(torch_stack: httpx.Client) -> None:
    job = run_to_the_end(torch_stack, tiny_spec(resources={"queue": "gpu"}))
    assert job["status"] == "succeeded", job["error"]
    assert job["worker"]["backend"] == "torch"
    assert job["worker"]["device"]["kind"] == "cpu"
    assert job["result"]["test_accuracy"] > 0.5
    records = torch_stack.get(f"/v1/jobs/{job['id']}/metrics").json()["records"]
    assert [record["epoch"] for record in records] == [1, 2]
    assert all(record["val_accuracy"] is not None for record in records)

    model_file = torch_stack.get(f"/v1/jobs/{job['id']}/model")
    assert model_file.status_code == 200
    path = Path(os.environ["ARTIFACTS_DIR"]) / f"torch-model-{job['id']}.keras"
    path.write_bytes(model_file.content)
    # Saved by PyTorch, loaded here by TensorFlow: the .keras format belongs to no backend.
    model = keras.models.load_model(path)
    predictions = model.predict(np.zeros((2, 28, 28), dtype=np.uint8), verbose=0)
    assert predictions.shape == (2, 10)
    assert np.allclose(predictions.sum(axis=1), 1.0, atol=1e-4)


def test_mixed_precision_trains_on_the_gpu_queue(torch_stack: httpx.Client) -> None:
    spec = tiny_spec(resources={"queue": "gpu"}, training={"mixed_precision": True, "epochs": 1})
    job = run_to_the_end(torch_stack, spec)
    assert job["status"] == "succeeded", job["error"]
    assert job["spec"]["training"]["mixed_precision"] is True
    assert job["worker"]["backend"] == "torch"
    records = torch_stack.get(f"/v1/jobs/{job['id']}/metrics").json()["records"]
    assert [record["epoch"] for record in records] == [1]
    assert np.isfinite(records[0]["loss"])


def test_mixed_precision_on_the_cpu_queue_is_refused(torch_stack: httpx.Client) -> None:
    spec = tiny_spec(resources={"queue": "cpu"}, training={"mixed_precision": True})
    response = torch_stack.post("/v1/jobs", json=spec)
    assert response.status_code == 422
    assert [error["field"] for error in response.json()["errors"]] == ["training.mixed_precision"]


def test_augmentation_trains_on_the_torch_backend(torch_stack: httpx.Client) -> None:
    augmentation = {"rotation": 0.05, "translation": 0.1, "zoom": 0.1, "horizontal_flip": True}
    spec = tiny_spec(resources={"queue": "gpu"}, regularization={"augmentation": augmentation})
    job = run_to_the_end(torch_stack, spec)
    assert job["status"] == "succeeded", job["error"]
    assert job["worker"]["backend"] == "torch"
    records = torch_stack.get(f"/v1/jobs/{job['id']}/metrics").json()["records"]
    assert [record["epoch"] for record in records] == [1, 2]
    assert all(np.isfinite(record["loss"]) for record in records)
    path = Path(os.environ["ARTIFACTS_DIR"]) / f"torch-augmented-{job['id']}.keras"
    path.write_bytes(torch_stack.get(f"/v1/jobs/{job['id']}/model").content)
    predictions, layers = predict_with_plain_keras(path, np.zeros((2, 28, 28), dtype=np.uint8))
    assert predictions.shape == (2, 10)
    assert "RandomAffine" not in layers
