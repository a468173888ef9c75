"""Submitting, reading, listing and cancelling jobs that no worker picks up (the gpu queue)."""

import uuid
from typing import Any

import httpx

from tests.helpers import tiny_spec


def submit_idle(client: httpx.Client, **overrides: Any) -> dict[str, Any]:
    """Submit a job to the gpu queue, which no test worker consumes, so it stays queued."""
    response = client.post("/v1/jobs", json=tiny_spec(resources={"queue": "gpu"}, **overrides))
    assert response.status_code == 202, response.text
    job: dict[str, Any] = response.json()
    return job


def test_submit_answers_202_with_the_job_and_its_location(client: httpx.Client) -> None:
    response = client.post("/v1/jobs", json={"preset": "dropout", "resources": {"queue": "gpu"}})
    assert response.status_code == 202
    job = response.json()
    assert response.headers["location"] == f"/v1/jobs/{job['id']}"
    assert (job["status"], job["attempt"], job["preset"], job["queue"]) == ("queued", 0, "dropout", "gpu")
    assert job["spec"]["regularization"]["dropout"] == 0.25
    assert job["spec"]["model"]["hidden_layers"] == [500] * 5
    assert [t["status"] for t in job["transitions"]] == ["queued"]


def test_a_submitted_job_reads_back(client: httpx.Client) -> None:
    job = submit_idle(client, tags={"team": "vision"})
    fetched = client.get(job["links"]["self"]).json()
    assert fetched["spec"] == job["spec"]
    assert (fetched["name"], fetched["tags"], fetched["progress"]) == (
        "tiny",
        {"team": "vision"},
        {"epoch": 0, "epochs": 2},
    )


def test_list_filters_by_tag_and_pages_with_a_cursor(client: httpx.Client) -> None:
    tag = uuid.uuid4().hex
    ids = [submit_idle(client, tags={"batch": tag})["id"] for _ in range(3)]
    first = client.get("/v1/jobs", params={"tag": f"batch:{tag}", "limit": 2}).json()
    assert [job["id"] for job in first["items"]] == ids[::-1][:2]
    second = client.get(
        "/v1/jobs", params={"tag": f"batch:{tag}", "limit": 2, "cursor": first["next_cursor"]}
    ).json()
    assert [job["id"] for job in second["items"]] == ids[:1]
    assert second["next_cursor"] is None


def test_list_filters_by_status(client: httpx.Client) -> None:
    tag = uuid.uuid4().hex
    kept, cancelled = (submit_idle(client, tags={"batch": tag})["id"] for _ in range(2))
    client.post(f"/v1/jobs/{cancelled}/cancel")
    params = {"tag": f"batch:{tag}", "status": "cancelled"}
    assert [job["id"] for job in client.get("/v1/jobs", params=params).json()["items"]] == [cancelled]
    params["status"] = "queued"
    assert [job["id"] for job in client.get("/v1/jobs", params=params).json()["items"]] == [kept]


def test_cancelling_a_queued_job_cancels_it_at_once(client: httpx.Client) -> None:
    job = submit_idle(client)
    response = client.post(f"/v1/jobs/{job['id']}/cancel")
    assert response.status_code == 200
    cancelled = response.json()
    assert (cancelled["status"], cancelled["stop_reason"]) == ("cancelled", "cancelled")
    assert [t["status"] for t in cancelled["transitions"]] == ["queued", "cancelled"]
    assert cancelled["finished_at"] is not None
    again = client.post(f"/v1/jobs/{job['id']}/cancel")
    assert (again.status_code, again.json()["status"]) == (200, "cancelled")


def test_a_job_without_a_model_answers_409(client: httpx.Client) -> None:
    job = submit_idle(client)
    response = client.get(f"/v1/jobs/{job['id']}/model")
    assert response.status_code == 409
    assert "no model yet" in response.json()["detail"]


def test_metrics_of_a_queued_job_are_empty(client: httpx.Client) -> None:
    job = submit_idle(client)
    page = client.get(f"/v1/jobs/{job['id']}/metrics").json()
    assert page == {
        "job_id": job["id"],
        "status": "queued",
        "records": [],
        "last_epoch": 0,
        "has_more": False,
    }


def test_presets_are_the_articles_six_and_the_convnets(client: httpx.Client) -> None:
    presets = {p["name"]: p for p in client.get("/v1/presets").json()}
    articles = ["baseline", "l2", "l1", "dropout", "augmentation", "early_stopping"]
    assert list(presets) == [*articles, "convnet", "convnet_augmented"]
    assert [layer["type"] for layer in presets["convnet"]["spec"]["model"]["layers"]] == [
        "conv2d",
        "max_pool2d",
        "conv2d",
        "max_pool2d",
        "flatten",
        "dropout",
    ]
    assert presets["l2"]["spec"]["regularization"]["l2"] == 1e-4
    assert presets["baseline"]["spec"]["training"] == {
        "epochs": 10,
        "batch_size": 128,
        "optimizer": "adam",
        "learning_rate": 0.001,
        "momentum": 0.0,
        "seed": 128,
        "mixed_precision": False,
        "jit_compile": None,
    }


def test_health_and_readiness(client: httpx.Client, operator: httpx.Client) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = operator.get("/readyz").json()
    assert (ready["ready"], ready["redis"], ready["auth"]) == (True, "ok", "enabled")


def test_openapi_documents_the_spec(client: httpx.Client) -> None:
    document = client.get("/openapi.json").json()
    assert {"/v1/jobs", "/v1/jobs/{job_id}", "/v1/jobs/{job_id}/metrics", "/v1/presets"} <= set(
        document["paths"]
    )
    dropout = document["components"]["schemas"]["RegularizationSpec"]["properties"]["dropout"]
    assert dropout["maximum"] == 0.95
    assert dropout["description"]
