"""Live workers (`GET /v1/workers`, `/readyz`), the device a job's attempt records, and the speed
options' validation."""

from typing import Any

import httpx
import pytest

from tests.helpers import tiny_spec, wait_for

FINAL = {"succeeded", "failed", "cancelled"}


def job_of(client: httpx.Client, job_id: str) -> dict[str, Any]:
    return client.get(f"/v1/jobs/{job_id}").raise_for_status().json()


def the_worker(client: httpx.Client, name: str) -> dict[str, Any]:
    (found,) = [item for item in client.get("/v1/workers").json()["items"] if item["name"] == name]
    return found


@pytest.mark.usefixtures("worker")
def test_workers_need_an_api_key(api_url: str) -> None:
    response = httpx.get(f"{api_url}/v1/workers")
    assert response.status_code == 401
    assert response.headers["content-type"].startswith("application/problem+json")


def test_workers_show_queues_device_backend_and_process(client: httpx.Client, worker: str) -> None:
    listed = the_worker(client, worker)
    assert listed["queues"] == ["cpu"]
    assert listed["backend"] == "tensorflow"
    assert listed["device"]["kind"] == "cpu"
    assert listed["device"]["name"]
    assert listed["device"]["memory_bytes"] > 0
    assert listed["device"]["index"] is None
    assert listed["pid"] > 0
    assert listed["host"]
    assert listed["status"] in {"idle", "busy"}


def test_readyz_lists_the_workers_without_job_ids(operator: httpx.Client, worker: str) -> None:
    ready = operator.get("/readyz").json()
    (listed,) = [item for item in ready["live_workers"] if item["name"] == worker]
    assert listed["device"]["kind"] == "cpu"
    assert listed["current_job"] is None
    assert ready["workers"]["cpu"] >= 1


@pytest.mark.e2e
def test_a_job_records_the_worker_and_device_that_ran_it(client: httpx.Client, worker: str) -> None:
    job = client.post("/v1/jobs", json=tiny_spec(resources={"queue": "cpu"})).raise_for_status().json()
    assert job["worker"] is None
    done = wait_for(lambda: (j := job_of(client, job["id"]))["status"] in FINAL and j, timeout=180)
    assert done["status"] == "succeeded"
    ran_on = done["worker"]
    assert ran_on["name"] == worker
    assert ran_on["backend"] == "tensorflow"
    assert ran_on["device"]["kind"] == "cpu"
    assert ran_on["pid"] == the_worker(client, worker)["pid"]


@pytest.mark.e2e
def test_a_busy_worker_shows_its_job_to_its_tenant_only(
    client: httpx.Client, other_client: httpx.Client, operator: httpx.Client, worker: str
) -> None:
    long = tiny_spec(resources={"queue": "cpu"}, training={"epochs": 500})
    job = client.post("/v1/jobs", json=long).raise_for_status().json()
    try:
        wait_for(lambda: job_of(client, job["id"])["status"] == "running", timeout=180)
        mine = wait_for(lambda: (w := the_worker(client, worker))["current_job"] and w, timeout=30)
        assert (mine["status"], mine["current_job"]) == ("busy", job["id"])
        theirs = the_worker(other_client, worker)
        assert (theirs["status"], theirs["current_job"]) == ("busy", None)
        assert job["id"] not in operator.get("/readyz").text
    finally:
        client.post(f"/v1/jobs/{job['id']}/cancel")
    wait_for(lambda: job_of(client, job["id"])["status"] in FINAL, timeout=120)


def field_errors(response: httpx.Response) -> dict[str, str]:
    assert response.status_code == 422, response.text
    return {error["field"]: error["type"] for error in response.json()["errors"]}


@pytest.mark.parametrize("resources", [{"queue": "cpu"}, {}])
def test_mixed_precision_is_refused_on_the_cpu_queue(client: httpx.Client, resources: dict[str, Any]) -> None:
    body = tiny_spec(training={"mixed_precision": True}, resources=resources)
    assert field_errors(client.post("/v1/jobs", json=body)) == {"training.mixed_precision": "device_mismatch"}


def test_mixed_precision_and_jit_compile_are_taken_on_the_gpu_queue(client: httpx.Client) -> None:
    body = tiny_spec(training={"mixed_precision": True, "jit_compile": False}, resources={"queue": "gpu"})
    response = client.post("/v1/jobs", json=body)
    assert response.status_code == 202, response.text
    job = response.json()
    # The suite's worker consumes only the cpu queue: the job waits until cancelled.
    assert client.post(f"/v1/jobs/{job['id']}/cancel").json()["status"] == "cancelled"
    assert job["spec"]["training"]["mixed_precision"] is True
    assert job["spec"]["training"]["jit_compile"] is False


def test_jit_compile_takes_a_boolean_or_null(client: httpx.Client) -> None:
    body = tiny_spec(training={"jit_compile": "sometimes"})
    assert field_errors(client.post("/v1/jobs", json=body)) == {"training.jit_compile": "bool_type"}
