"""The OpenAPI document that platforms generate clients from: every operation keeps a short,
stable, unique id, so that generated modules and functions read ``submit_job``, ``get_job``."""

from typing import Any

import pytest

from api.main import create_api

OPERATION_IDS = {
    ("post", "/v1/jobs"): "submit_job",
    ("get", "/v1/jobs"): "list_jobs",
    ("get", "/v1/jobs/{job_id}"): "get_job",
    ("get", "/v1/queue"): "get_queue",
    ("post", "/v1/jobs/{job_id}/cancel"): "cancel_job",
    ("get", "/v1/jobs/{job_id}/metrics"): "get_job_metrics",
    ("get", "/v1/jobs/{job_id}/events"): "stream_job_events",
    ("get", "/v1/jobs/{job_id}/model"): "download_model",
    ("get", "/v1/jobs/{job_id}/deliveries"): "list_deliveries",
    ("get", "/v1/presets"): "list_presets",
    ("post", "/v1/studies"): "create_study",
    ("get", "/v1/studies"): "list_studies",
    ("get", "/v1/studies/{study_id}"): "get_study",
    ("post", "/v1/studies/{study_id}/cancel"): "cancel_study",
    ("get", "/v1/studies/{study_id}/report"): "get_study_report",
    ("get", "/v1/studies/{study_id}/curves.png"): "get_study_curves",
    ("get", "/v1/studies/{study_id}/progress.png"): "get_search_progress",
    ("post", "/v1/datasets"): "upload_dataset",
    ("get", "/v1/datasets"): "list_datasets",
    ("get", "/v1/datasets/{dataset_id}"): "get_dataset",
    ("delete", "/v1/datasets/{dataset_id}"): "delete_dataset",
    ("get", "/v1/webhooks/secret"): "get_webhook_secret",
    ("post", "/v1/webhooks/secret/rotate"): "rotate_webhook_secret",
    ("get", "/v1/workers"): "list_workers",
    ("get", "/healthz"): "get_liveness",
    ("get", "/readyz"): "get_readiness",
    ("get", "/metrics"): "get_prometheus_metrics",
}


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return create_api().openapi()


def test_every_operation_keeps_its_id(document: dict[str, Any]) -> None:
    found = {
        (method, path): operation["operationId"]
        for path, operations in document["paths"].items()
        for method, operation in operations.items()
    }
    assert found == OPERATION_IDS


OPERATOR_ROUTES = ("/readyz", "/metrics")


def test_every_v1_operation_asks_for_a_key(document: dict[str, Any]) -> None:
    for (method, path), operation_id in OPERATION_IDS.items():
        operation = document["paths"][path][method]
        assert (operation.get("security") == [{"HTTPBearer": []}]) is path.startswith("/v1/"), operation_id


def test_the_operator_routes_ask_for_the_operator_token_and_liveness_for_nothing(
    document: dict[str, Any],
) -> None:
    for path in OPERATOR_ROUTES:
        operation = document["paths"][path]["get"]
        assert operation["security"] == [{"OperatorToken": []}]
        assert "401" in operation["responses"]
    assert "security" not in document["paths"]["/healthz"]["get"]
    scheme = document["components"]["securitySchemes"]["OperatorToken"]
    assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")
