"""The sync client against the running API: typed answers, and problem documents as ``ApiError``."""

import uuid
from pathlib import Path

import numpy as np
import pytest

from client import ApiError, JobStatus, JobSubmission, KJobsClient
from shared.models.spec import TrainingSpec
from shared.settings import Settings
from tests.helpers import tiny_spec


def test_a_bad_spec_raises_an_api_error_naming_each_field(kjobs: KJobsClient) -> None:
    with pytest.raises(ApiError) as caught:
        kjobs.submit({"regularization": {"dropout": 1.5}, "training": {"optimizer": "lbfgs"}})
    error = caught.value
    assert (error.status, error.title) == (422, "Invalid request")
    assert error.fields == ["regularization.dropout", "training.optimizer"]
    assert "regularization.dropout" in error.detail
    assert error.errors[0].location == "body"


def test_an_unknown_job_is_a_404(kjobs: KJobsClient) -> None:
    with pytest.raises(ApiError) as caught:
        kjobs.get_job("0" * 24)
    assert caught.value.status == 404
    assert caught.value.title == "Not found"


def test_a_wrong_key_is_a_401(api_url: str) -> None:
    with KJobsClient(api_url, "not-a-key") as kjobs, pytest.raises(ApiError) as caught:
        kjobs.list_jobs()
    assert caught.value.status == 401


def test_a_model_submission_sends_only_the_fields_set(kjobs: KJobsClient) -> None:
    submission = JobSubmission(preset="l2", training=TrainingSpec(epochs=3), resources={"queue": "gpu"})
    job = kjobs.submit(submission)
    assert job.preset == "l2"
    assert job.spec.regularization.l2 == 1e-4, "the preset's value was not overwritten by a default"
    assert job.spec.training.epochs == 3
    assert kjobs.cancel(job.id).status is JobStatus.CANCELLED


def test_list_filters_and_pages_with_the_cursor(kjobs: KJobsClient) -> None:
    run = uuid.uuid4().hex
    ids = [kjobs.submit(tiny_spec(tags={"run": run}, resources={"queue": "gpu"})).id for _ in range(3)]
    first = kjobs.list_jobs(tag={"run": run}, status=["queued"], limit=2)
    second = kjobs.list_jobs(tag={"run": run}, status=["queued"], limit=2, cursor=first.next_cursor)
    assert [job.id for job in first.items + second.items] == ids[::-1]
    assert second.next_cursor is None
    assert [job.id for job in kjobs.iter_jobs(tag={"run": run}, page_size=1)] == ids[::-1]
    for job_id in ids:
        kjobs.cancel(job_id)
    assert kjobs.list_jobs(tag={"run": run}, status=[JobStatus.QUEUED]).items == []


def test_presets_health_and_readiness(kjobs: KJobsClient, settings_env: Settings) -> None:
    assert [preset.name for preset in kjobs.presets()][:2] == ["baseline", "l2"]
    assert kjobs.health().status == "ok"
    assert settings_env.operator_token is not None
    ready = kjobs.ready(settings_env.operator_token.get_secret_value())
    assert (ready.ready, ready.redis) == (True, "ok")
    with pytest.raises(ApiError) as refused:
        kjobs.ready()  # the client's API key is a tenant's
    assert refused.value.status == 401


def test_a_study_is_created_read_reported_and_cancelled(kjobs: KJobsClient) -> None:
    base = tiny_spec(resources={"queue": "gpu"})
    study = kjobs.create_study(
        {"name": "client", "base": base, "grid": {"regularization.l2": [0.0, 1e-4]}, "max_parallel": 1}
    )
    assert [job.variant for job in study.jobs] == ["l2=0.0", "l2=0.0001"]
    assert kjobs.get_study(study.id).counts == {"queued": 1, "held": 1}
    assert kjobs.study_report(study.id, format="csv").splitlines()[0].startswith("rank,variant")
    assert study.id in [item.id for item in kjobs.list_studies().items]
    cancelled = kjobs.cancel_study(study.id)
    assert cancelled.counts == {"cancelled": 2}
    assert kjobs.study_curves(study.id).startswith(b"\x89PNG")


def test_a_study_with_a_bad_variant_names_it(kjobs: KJobsClient) -> None:
    with pytest.raises(ApiError) as caught:
        kjobs.create_study({"base": tiny_spec(), "grid": {"regularization.l3": [1]}})
    assert caught.value.status == 422
    assert caught.value.fields == ["grid.regularization.l3"]


def test_a_dataset_is_uploaded_described_and_deleted(kjobs: KJobsClient, tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    path = tmp_path / "mine.npz"
    labels = rng.integers(0, 10, 200, dtype=np.uint8)
    np.savez(path, x_train=rng.integers(0, 255, (200, 28, 28), dtype=np.uint8), y_train=labels)
    info = kjobs.upload_dataset([path], name="mine")
    assert (info.name, info.train_samples + info.test_samples) == ("mine", 200)
    assert kjobs.get_dataset(info.id).id == info.id
    assert [dataset.id for dataset in kjobs.list_datasets()] == [info.id]
    kjobs.delete_dataset(info.id)
    with pytest.raises(ApiError) as caught:
        kjobs.get_dataset(info.id)
    assert caught.value.status == 404


def test_the_webhook_secret_is_read_and_rotated(kjobs: KJobsClient) -> None:
    first = kjobs.webhook_secret()
    assert kjobs.webhook_secret() == first
    rotated = kjobs.rotate_webhook_secret()
    assert rotated.secret != first.secret
    assert kjobs.webhook_secret() == rotated


def test_a_job_without_notify_has_no_deliveries(kjobs: KJobsClient) -> None:
    job = kjobs.submit(tiny_spec(resources={"queue": "gpu"}))
    log = kjobs.deliveries(job.id)
    assert (log.job_id, log.items) == (job.id, [])
    kjobs.cancel(job.id)


def test_the_live_workers_include_the_suite_s_worker(kjobs: KJobsClient, worker: str) -> None:
    workers = {item.name: item for item in kjobs.workers().items}
    assert workers[worker].queues == ["cpu"]
