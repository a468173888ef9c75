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


def test_a_worker_that_cannot_write_its_store_refuses_to_start(s3_stack: Stack) -> None:
    refused = s3_stack.spawn_worker(
        ARTIFACTS_URL="s3://no-such-bucket/x", ARTIFACTS_CHECK_SECONDS="1", **host(s3_stack, "lost")
    )
    assert refused.wait(timeout=120) == 78
    assert (
        "refusing to start: the artifact store s3://no-such-bucket/x cannot be used"
        in s3_stack.worker_log(s3_stack.names[-1]).read_text()
    )


def test_a_worker_that_does_not_share_the_api_s_folder_refuses_to_start(stack: Stack) -> None:
    refused = stack.spawn_worker(ARTIFACTS_DIR=str(stack.folder / "elsewhere"))
    assert refused.wait(timeout=120) == 78
    assert "does not share the API's artifact store" in stack.worker_log(stack.names[-1]).read_text()
    shared = stack.start_worker()
    assert shared.poll() is None, "a worker on the API's own folder starts"


def test_a_redirect_to_a_presigned_url_serves_the_model(
    tmp_path: Path, datasets_dir: Path, s3_server: S3Server
) -> None:
    bucket = f"redirect-{uuid.uuid4().hex[:12]}"
    s3_server.create_bucket(bucket)
    settings = {**s3_server.env, "ARTIFACTS_URL": f"s3://{bucket}", "MODEL_DOWNLOAD": "redirect"}
    with stack_of(tmp_path, datasets_dir, **settings) as stack:
        stack.start_worker(**host(stack, "worker"))
        job_id = submit(
            stack, {"preset": "baseline", "dataset": {"train_limit": 300}, "training": {"epochs": 1}}
        )
        assert wait_until_ended(stack, job_id)["status"] == "succeeded"
        answer = httpx.get(f"{stack.url}/v1/jobs/{job_id}/model", headers=stack.headers, timeout=30)
        assert answer.status_code == 307
        location = answer.headers["location"]
        assert location.startswith(f"{s3_server.url}/{bucket}/")
        assert "Signature" in location
        assert httpx.get(location, timeout=30).content[:2] == b"PK", "a .keras file is a zip"
