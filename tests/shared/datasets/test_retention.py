"""Datasets' retention on a real Redis: one goes once no submission has named it for the
retention time and no queued or running job uses it, with its file."""

import time
from pathlib import Path

import numpy as np
import pytest

from shared.datasets.formats import UploadedArrays
from shared.datasets.store import DatasetStore
from shared.jobs.store import JobStore
from shared.models.datasets import DatasetInfo
from shared.models.jobs import JobRecord, JobStatus, new_job_id
from shared.models.spec import JobSpec
from shared.storage.layout import dataset_key
from shared.storage.local import LocalStore


@pytest.fixture
def datasets(store: JobStore, tmp_path: Path) -> DatasetStore:
    return DatasetStore(store, LocalStore(tmp_path))


def saved(datasets: DatasetStore) -> DatasetInfo:
    rng = np.random.default_rng(1)
    x, y = rng.integers(0, 255, (40, 8, 8), dtype=np.uint8), np.arange(40, dtype=np.uint8) % 4
    arrays = UploadedArrays(x_train=x, y_train=y, x_test=x[:8], y_test=y[:8], test_held_out=False)
    return datasets.save("t1", None, arrays)


def spec_on(dataset_id: str) -> JobSpec:
    return JobSpec.model_validate({"dataset": {"name": dataset_id}, "model": {"hidden_layers": [8]}})


def test_an_unused_dataset_goes_with_its_file(datasets: DatasetStore) -> None:
    info = saved(datasets)
    later = time.time() + 1
    assert datasets.unused_since(later) == [info.id]
    assert datasets.unused_since(time.time() - 60) == [], "used when it was uploaded"
    assert datasets.expire_unused(info.id, later)
    assert datasets.for_tenant("t1") == []
    assert datasets.artifacts.size(dataset_key(info.id)) is None
    assert datasets.unused_since(later) == []


def test_a_submission_naming_a_dataset_counts_as_its_use(datasets: DatasetStore) -> None:
    info = saved(datasets)
    cutoff = time.time() + 0.01
    time.sleep(0.02)
    datasets.shape_of(spec_on(info.id), "t1")
    assert not datasets.expire_unused(info.id, cutoff)
    assert [d.id for d in datasets.for_tenant("t1")] == [info.id]


def test_a_dataset_a_queued_job_names_stays(datasets: DatasetStore) -> None:
    info = saved(datasets)
    record = JobRecord.new(new_job_id(), "t1", spec_on(info.id), "cpu")
    datasets.store.create(record)
    later = time.time() + 1
    assert not datasets.expire_unused(info.id, later)
    datasets.store.change_status(record.id, JobStatus.CANCELLED, reason="cancelled while queued")
    assert datasets.expire_unused(info.id, later), "no job uses it any more"
