"""What follows a job's ending, done by the workers whichever way the job ended: its study's
next held job is sent, and its checkpoints are deleted, while its model stays."""

from pathlib import Path
from typing import Any

import httpx
import pytest

from shared.jobs.store import JobStore
from shared.models.jobs import JobStatus
from shared.settings import Settings
from tests.helpers import tiny_spec, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("worker")]

IDLE = tiny_spec(resources={"queue": "gpu"})  # no test worker consumes the gpu queue


def study_counts(client: httpx.Client, study_id: str) -> dict[str, int]:
    counts: dict[str, int] = client.get(f"/v1/studies/{study_id}").json()["counts"]
    return counts


def test_a_study_goes_on_when_a_job_is_cancelled_through_the_api(
    client: httpx.Client, settings_env: Settings
) -> None:
    variants = [{"name": name, "overrides": {}} for name in ("first", "second", "third")]
    created = client.post("/v1/studies", json={"base": IDLE, "variants": variants, "max_parallel": 1})
    assert created.status_code == 202, created.text
    study = created.json()
    assert study["counts"] == {"queued": 1, "held": 2}
    first = study["jobs"][0]["job_id"]
    assert client.post(f"/v1/jobs/{first}/cancel").json()["status"] == "cancelled"
    # The API only records the ending; a worker's heartbeat sends the study's next job.
    wait_for(
        lambda: study_counts(client, study["id"]) == {"cancelled": 1, "queued": 1, "held": 1},
        timeout=30,
        what="the study's next job to be sent",
    )
    store = JobStore.from_settings(settings_env)
    wait_for(lambda: store.redis.zscore(store.keys.endings(), first) is None, timeout=30, what="settled")
    client.post(f"/v1/studies/{study['id']}/cancel")


def test_an_ending_left_without_its_follow_ups_is_settled_by_a_heartbeat(
    client: httpx.Client, settings_env: Settings
) -> None:
    variants = [{"name": name, "overrides": {}} for name in ("first", "second")]
    study = client.post("/v1/studies", json={"base": IDLE, "variants": variants, "max_parallel": 1}).json()
    first = study["jobs"][0]["job_id"]
    # As a worker that recorded the ending and died before anything else: the transition alone.
    store = JobStore.from_settings(settings_env)
    store.change_status(first, JobStatus.FAILED, reason="its worker died")
    wait_for(
        lambda: study_counts(client, study["id"]) == {"failed": 1, "queued": 1},
        timeout=30,
        what="the study's held job to be sent",
    )
    client.post(f"/v1/studies/{study['id']}/cancel")


def test_a_finished_job_keeps_its_model_and_loses_its_checkpoints(
    client: httpx.Client, settings_env: Settings
) -> None:
    submitted = client.post("/v1/jobs", json=tiny_spec(training={"epochs": 2}))
    job_id = submitted.json()["id"]

    def ended() -> dict[str, Any] | None:
        job: dict[str, Any] = client.get(f"/v1/jobs/{job_id}").json()
        return job if job["status"] in ("succeeded", "failed", "cancelled") else None

    job = wait_for(ended, timeout=120, what="the job to end")
    assert (job["status"], job["has_model"]) == ("succeeded", True)
    folder = Path(settings_env.artifacts_dir) / job_id
    wait_for(lambda: not (folder / "checkpoints").exists(), timeout=30, what="the checkpoints to go")
    assert client.get(f"/v1/jobs/{job_id}/model").status_code == 200
