"""More machines, for real: workers with folders of their own and an S3 store as their only
common storage; a worker that cannot use its store, or does not share the API's, refuses to
start."""

import os
import signal
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from shared.storage.layout import dataset_key
from tests.api.test_datasets import npz, upload
from tests.e2e.stack import (
    SLOW_SPEC,
    Stack,
    assert_complete,
    epochs,
    stack_of,
    submit,
    wait_for_epoch,
    wait_until_ended,
)
from tests.helpers import learnable_images, tiny_spec
from tests.plain_keras import predict_with_plain_keras
from tests.s3_server import S3Server

pytestmark = pytest.mark.e2e


@pytest.fixture
def s3_stack(tmp_path: Path, datasets_dir: Path, s3_server: S3Server) -> Iterator[Stack]:
    """A stack whose artifact store is a bucket of its own; the API has no folder a worker uses."""
    bucket = f"hosts-{uuid.uuid4().hex[:12]}"
    s3_server.create_bucket(bucket)
    settings = {
        **s3_server.env,
        "ARTIFACTS_URL": f"s3://{bucket}/deployment",
        "ARTIFACTS_DIR": str(tmp_path / "api"),
    }
    with stack_of(tmp_path, datasets_dir, **settings) as stack:
        yield stack


def host(stack: Stack, name: str) -> dict[str, str]:
    """The folders of one 'host': nothing another worker or the API sees."""
    folder = stack.folder / name
    return {"CACHE_DIR": str(folder / "cache"), "ARTIFACTS_DIR": str(folder / "artifacts")}


def test_a_job_killed_on_one_host_resumes_on_another_from_the_object_store(
    s3_stack: Stack, tmp_path: Path
) -> None:
    first = s3_stack.start_worker(**host(s3_stack, "first"))
    job_id = submit(s3_stack, SLOW_SPEC)
    wait_for_epoch(s3_stack, job_id, 2)
    os.kill(first.pid, signal.SIGKILL)
    first.wait()
    s3_stack.start_worker(**host(s3_stack, "second"))
    job = wait_until_ended(s3_stack, job_id)
    assert job["status"] == "succeeded", job["error"]
    assert_complete(s3_stack, job_id, 8)
    assert {attempt for _, attempt in epochs(s3_stack, job_id)} == {1, 2}
    cached = list((s3_stack.folder / "second" / "cache").rglob("model.keras"))
    assert cached, "the second host read the first one's checkpoint from the store"
    assert not (s3_stack.folder / "second" / "artifacts").exists()
    model = httpx.get(f"{s3_stack.url}/v1/jobs/{job_id}/model", headers=s3_stack.headers, timeout=30)
    assert model.status_code == 200
    (tmp_path / "served.keras").write_bytes(model.content)
    predictions, _ = predict_with_plain_keras(tmp_path / "served.keras", np.zeros((2, 28, 28), np.uint8))
    assert predictions.shape == (2, 10)


def test_an_upload_goes_to_the_store_and_a_worker_of_another_host_trains_on_it(s3_stack: Stack) -> None:
    s3_stack.start_worker(**host(s3_stack, "trainer"))
    rng = np.random.default_rng(5)
    labels = rng.integers(0, 10, size=200).astype(np.uint8)
    arrays = npz(x_train=learnable_images(labels, rng), y_train=labels)
    with httpx.Client(base_url=s3_stack.url, headers=s3_stack.headers, timeout=30) as client:
        answer = upload(client, {"file": ("d.npz", arrays)})
    assert answer.status_code == 201, answer.text
    dataset_id = answer.json()["id"]
    spec = tiny_spec(dataset={"name": dataset_id, "train_limit": None, "validation_split": 0.2})
    job = wait_until_ended(s3_stack, submit(s3_stack, spec))
    assert job["status"] == "succeeded", job["error"]
    cached = s3_stack.folder / "trainer" / "cache" / dataset_key(dataset_id)
    assert cached.is_file(), "the worker read the upload from the store, through its cache"
