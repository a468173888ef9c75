"""Retention, for real: a worker whose RETENTION_SECONDS is short deletes the study that ended, its
jobs and their files, and the datasets no job uses any more, while a dataset that a queued job
names stays."""

from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from shared.storage.layout import dataset_key
from tests.api.test_datasets import npz, upload
from tests.e2e.stack import Stack
from tests.helpers import learnable_images, tiny_spec, wait_for

pytestmark = pytest.mark.e2e


@pytest.fixture
def client(stack: Stack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=stack.url, headers=stack.headers, timeout=30) as http:
        yield http


def uploaded(client: httpx.Client) -> str:
    rng = np.random.default_rng(5)
    labels = rng.integers(0, 10, size=200).astype(np.uint8)
    answer = upload(client, {"file": ("d.npz", npz(x_train=learnable_images(labels, rng), y_train=labels))})
    assert answer.status_code == 201, answer.text
    dataset_id: str = answer.json()["id"]
    return dataset_id


def gone(client: httpx.Client, path: str) -> bool:
    return client.get(path).status_code == 404


def test_what_is_past_its_retention_goes_with_its_files(stack: Stack, client: httpx.Client) -> None:
    studied, queued_on, unused = uploaded(client), uploaded(client), uploaded(client)
    base = tiny_spec(dataset={"name": studied, "train_limit": None, "validation_split": 0.2})
    variants = [{"name": name, "overrides": {}} for name in ("a", "b")]
    study = client.post("/v1/studies", json={"base": base, "variants": variants, "max_parallel": 1}).json()
    waiting = tiny_spec(dataset={"name": queued_on, "train_limit": None}, resources={"queue": "gpu"})
    kept_job = client.post("/v1/jobs", json=waiting).json()["id"]  # no worker takes the gpu queue
    stack.start_worker(RETENTION_SECONDS="3")
    wait_for(lambda: gone(client, f"/v1/studies/{study['id']}"), timeout=120, what="the study to go")
    artifacts = Path(stack.env["ARTIFACTS_DIR"])
    for job in study["jobs"]:
        assert gone(client, f"/v1/jobs/{job['job_id']}")
        assert not (artifacts / job["job_id"]).exists()
    assert study["id"] not in [s["id"] for s in client.get("/v1/studies").json()["items"]]
    wait_for(lambda: gone(client, f"/v1/datasets/{studied}"), timeout=30, what="its dataset to go")
    assert gone(client, f"/v1/datasets/{unused}")
    assert not (artifacts / dataset_key(studied)).exists()
    assert not (artifacts / dataset_key(unused)).exists()
    assert client.get(f"/v1/datasets/{queued_on}").status_code == 200, "a queued job names it"
    assert (artifacts / dataset_key(queued_on)).exists()
    assert client.get(f"/v1/jobs/{kept_job}").json()["status"] == "queued"
