"""Bad input: every malformed spec is a 422 problem naming the field; unknown ids are 404s."""

from typing import Any

import httpx
import pytest

from api.problems import PROBLEM_JSON

MALFORMED: list[tuple[dict[str, Any], str]] = [
    ({"dataset": {"name": "cifar10"}}, "dataset.name"),
    ({"dataset": {"validation_split": 0.95}}, "dataset.validation_split"),
    ({"dataset": {"validation_split": -0.1}}, "dataset.validation_split"),
    ({"dataset": {"train_limit": 0}}, "dataset.train_limit"),
    ({"model": {"hidden_layers": []}}, "model.hidden_layers"),
    ({"model": {"hidden_layers": [0]}}, "model.hidden_layers.0.units"),
    ({"model": {"hidden_layers": [{"units": 8, "l3": 1}]}}, "model.hidden_layers.0.l3"),
    ({"model": {"activation": "softplus2"}}, "model.activation"),
    ({"regularization": {"l2": -1e-4}}, "regularization.l2"),
    ({"regularization": {"l1": 2.0}}, "regularization.l1"),
    ({"regularization": {"dropout": 1.0}}, "regularization.dropout"),
    ({"regularization": {"input_dropout": "lots"}}, "regularization.input_dropout"),
    ({"regularization": {"augmentation": {"rotation": 3}}}, "regularization.augmentation.rotation"),
    ({"regularization": {"augmentation": {"zca_epsilon": 0}}}, "regularization.augmentation.zca_epsilon"),
    ({"regularization": {"early_stopping": {"monitor": "f1"}}}, "regularization.early_stopping.monitor"),
    ({"regularization": {"early_stopping": {"patience": -1}}}, "regularization.early_stopping.patience"),
    ({"training": {"epochs": 0}}, "training.epochs"),
    ({"training": {"epochs": 1001}}, "training.epochs"),
    ({"training": {"batch_size": 0}}, "training.batch_size"),
    ({"training": {"optimizer": "lbfgs"}}, "training.optimizer"),
    ({"training": {"learning_rate": 0}}, "training.learning_rate"),
    ({"training": {"momentum": 0.9}}, "training.momentum"),
    ({"resources": {"queue": "tpu"}}, "resources.queue"),
    ({"resources": {"max_runtime_seconds": 0}}, "resources.max_runtime_seconds"),
    ({"tags": {"bad key!": "x"}}, "tags.bad key!.[key]"),
    ({"unknown_field": 1}, "unknown_field"),
    ({"preset": "mystery"}, "preset"),
    ({"model": {"hidden_layers": [100_000]}}, "model.hidden_layers.0.units"),
    (
        {"dataset": {"validation_split": 0}, "regularization": {"early_stopping": {}}},
        "regularization.early_stopping.monitor",
    ),
    (
        {"preset": "early_stopping", "dataset": {"validation_split": 0}},
        "regularization.early_stopping.monitor",
    ),
    ({"model": {"hidden_layers": [8192] * 4}}, "model.hidden_layers"),
    ({"model": {"hidden_layers": [8], "layers": [{"type": "flatten"}]}}, "model.layers"),
    ({"model": {"layers": [{"type": "lstm", "units": 4}]}}, "model.layers.0"),
    ({"model": {"layers": [{"type": "conv2d"}, {"type": "flatten"}]}}, "model.layers.0.filters"),
    (
        {"model": {"layers": [{"type": "conv2d", "filters": 4, "kernel_size": 0}]}},
        "model.layers.0.kernel_size",
    ),
    ({"model": {"layers": [{"type": "flatten"}, {"type": "conv2d", "filters": 4}]}}, "model.layers.1.type"),
    (
        {
            "model": {
                "layers": [{"type": "conv2d", "filters": 4, "kernel_size": 15}] * 2 + [{"type": "flatten"}]
            }
        },
        "model.layers.1.kernel_size",
    ),
    ({"model": {"layers": [{"type": "conv2d", "filters": 4}]}}, "model.layers.0"),
    ({"model": {"layers": [{"type": "dense", "units": 4}]}}, "model.layers.0"),
    ({"model": {"task": "regression"}, "dataset": {"name": "fashion_mnist"}}, "model.task"),
]


@pytest.mark.parametrize(("body", "field"), MALFORMED, ids=[field for _, field in MALFORMED])
def test_malformed_spec_is_a_422_naming_the_field(
    client: httpx.Client, body: dict[str, Any], field: str
) -> None:
    response = client.post("/v1/jobs", json=body)
    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM_JSON
    problem = response.json()
    assert problem["status"] == 422
    fields = [error["field"] for error in problem["errors"]]
    assert any(f == field or f.startswith(f"{field}.") for f in fields), fields
    assert "Traceback" not in response.text


def test_invalid_json_is_a_422_not_a_500(client: httpx.Client) -> None:
    response = client.post("/v1/jobs", content=b"{not json", headers={"content-type": "application/json"})
    assert response.status_code == 422
    (error,) = response.json()["errors"]
    assert (error["location"], error["field"], error["type"]) == ("body", "body", "json_invalid")


def test_a_body_that_is_not_an_object_is_a_422(client: httpx.Client) -> None:
    response = client.post("/v1/jobs", json=[1, 2, 3])
    assert response.status_code == 422


def test_bad_query_parameters_name_the_parameter(client: httpx.Client) -> None:
    response = client.get("/v1/jobs", params={"limit": 0, "status": "sleeping", "tag": "nocolon"})
    assert response.status_code == 422
    fields = {(error["location"], error["field"]) for error in response.json()["errors"]}
    assert {("query", "limit"), ("query", "status.0")} <= fields


def test_tag_filter_without_colon_is_a_422(client: httpx.Client) -> None:
    response = client.get("/v1/jobs", params={"tag": "nocolon"})
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "tag.0"


@pytest.mark.parametrize("job_id", ["0" * 24, "not-an-id", "../../etc/passwd"])
@pytest.mark.parametrize("suffix", ["", "/metrics", "/model"])
def test_unknown_job_is_a_404_problem(client: httpx.Client, job_id: str, suffix: str) -> None:
    response = client.get(f"/v1/jobs/{job_id}{suffix}")
    assert response.status_code == 404
    assert response.headers["content-type"] == PROBLEM_JSON


def test_cancel_of_unknown_job_is_a_404(client: httpx.Client) -> None:
    assert client.post(f"/v1/jobs/{'f' * 24}/cancel").status_code == 404


@pytest.mark.parametrize("after_epoch", ["-1", "9223372036854775807", "1e20", "two"])
def test_an_after_epoch_out_of_range_is_a_422(client: httpx.Client, after_epoch: str) -> None:
    response = client.get(f"/v1/jobs/{'0' * 24}/metrics", params={"after_epoch": after_epoch})
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "after_epoch"


def test_unknown_route_is_a_404_problem(client: httpx.Client) -> None:
    response = client.get("/v2/nothing")
    assert response.status_code == 404
    assert response.headers["content-type"] == PROBLEM_JSON


def test_a_body_that_is_not_utf8_is_a_422(client: httpx.Client) -> None:
    response = client.post("/v1/jobs", content=b"\xff\xfe\xfa", headers={"content-type": "application/json"})
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "body"


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("OPTIONS", "/v1/jobs", "GET, POST"),
        ("DELETE", "/v1/jobs", "GET, POST"),
        ("PUT", "/v1/datasets", "GET, POST"),
        ("POST", "/v1/jobs/0123456789abcdef01234567/metrics", "GET"),
        ("PATCH", "/v1/studies/0123456789abcdef01234567/cancel", "POST"),
    ],
)
def test_a_405_lists_every_method_of_its_path(
    client: httpx.Client, method: str, path: str, allowed: str
) -> None:
    answer = client.request(method, path)
    assert answer.status_code == 405
    assert answer.headers["allow"] == allowed
    assert answer.headers["content-type"] == PROBLEM_JSON
