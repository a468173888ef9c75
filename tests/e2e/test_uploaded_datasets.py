"""Each upload format round-trips into a job that trains on it."""

from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from tests.api.test_datasets import csv_layout, idx_files, npz, upload, zipped
from tests.helpers import learnable_images, tiny_spec, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("worker")]


def many_npz() -> bytes:
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 10, size=400).astype(np.uint8)
    return npz(x_train=learnable_images(labels, rng), y_train=labels)


@pytest.mark.parametrize("kind", ["npz", "idx", "csv-zip"])
def test_an_uploaded_dataset_trains_a_job(client: httpx.Client, tmp_path: Path, kind: str) -> None:
    files: Any = {
        "npz": lambda: {"file": ("d.npz", many_npz())},
        "idx": lambda: idx_files(tmp_path),
        "csv-zip": lambda: {"file": ("d.zip", zipped(csv_layout(count=60)))},
    }[kind]()
    info = upload(client, files)
    assert info.status_code == 201, info.text
    spec = tiny_spec(dataset={"name": info.json()["id"], "train_limit": None, "validation_split": 0.2})
    job_id = client.post("/v1/jobs", json=spec).json()["id"]

    def ended() -> dict[str, Any] | None:
        job: dict[str, Any] = client.get(f"/v1/jobs/{job_id}").json()
        return job if job["status"] in ("succeeded", "failed", "cancelled") else None

    job = wait_for(ended, timeout=120, interval=0.2)
    assert job["status"] == "succeeded", job["error"]
    assert job["spec"]["dataset"]["name"] == info.json()["id"]
    assert 0.0 <= job["result"]["test_accuracy"] <= 1.0
    assert job["progress"]["epoch"] == 2
