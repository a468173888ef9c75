"""The OpenAPI document says what the service enforces: for each rule it states (a pattern, a
required or exclusive field, a grid's paths), a request on either side of it is judged alike by
the served document's JSON Schema and by the service. The fuzzer (test_fuzz.py) checks the
same at random; these are the cases it once found, kept."""

from collections.abc import Callable
from typing import Any

import httpx
import jsonschema_rs
import pytest

from tests.helpers import tiny_spec

Judge = Callable[[dict[str, Any]], bool]
IDLE = {"resources": {"queue": "gpu"}}  # no test worker consumes the gpu queue


@pytest.fixture(scope="module")
def document(client: httpx.Client) -> dict[str, Any]:
    served: dict[str, Any] = client.get("/openapi.json").json()
    return served


def schema_of(document: dict[str, Any], name: str) -> Judge:
    """Whether a body is valid against the document's component ``name``."""
    validator = jsonschema_rs.validator_for({**document, "$ref": f"#/components/schemas/{name}"})
    return lambda body: bool(validator.is_valid(body))


@pytest.mark.parametrize(
    ("body", "valid"),
    [
        (tiny_spec(training={"optimizer": "rmsprop", "momentum": 0.9}), True),  # Keras's RMSprop takes it
        (tiny_spec(training={"optimizer": "sgd", "momentum": 0.9}), True),
        (tiny_spec(training={"momentum": 0.9}), False),  # adam, by default
        (tiny_spec(training={"optimizer": "adamw", "momentum": 0.5}), False),
        (tiny_spec(model={"hidden_layers": [8], "layers": None}), True),
        (tiny_spec(model={"hidden_layers": [8], "layers": [{"type": "flatten"}]}), False),
        (tiny_spec(notify={"url": "https://hooks.example.com:8443/kjobs?x=1"}), True),
        (tiny_spec(notify={"url": "ftp://hooks.example.com/"}), False),
        (tiny_spec(notify={"url": "https://user:secret@hooks.example.com/"}), False),
        (tiny_spec(notify={"url": "https://hooks.example.com:65536/"}), False),
        (tiny_spec(notify={"url": "https:///no-host"}), False),
        (tiny_spec(training={"jit_compile": 0}), False),  # a boolean, or null; the fuzzer's find
        (tiny_spec(training={"epochs": "3"}), False),
        (tiny_spec(training={"learning_rate": 1}), True),  # an integer is a number
    ],
)
def test_a_job_the_document_calls_valid_is_accepted_and_one_it_does_not_is_refused(
    client: httpx.Client, document: dict[str, Any], body: dict[str, Any], valid: bool
) -> None:
    assert schema_of(document, "JobSubmission")(body | IDLE) is valid
    answer = client.post("/v1/jobs", json=body | IDLE)
    assert answer.status_code == (202 if valid else 422), answer.text


BASE = tiny_spec(**IDLE)


@pytest.mark.parametrize(
    ("body", "valid"),
    [
        ({"base": BASE, "variants": [{"name": "only", "overrides": {}}]}, True),
        ({"base": BASE, "grid": {"regularization.l2": [0.0, 1e-4]}}, True),
        ({"base": BASE}, False),  # none of preset, variants and grid
        ({"base": BASE, "preset": "article", "variants": [{"name": "a"}]}, False),
        ({"base": BASE, "preset": None, "variants": None, "grid": None}, False),
        ({"base": BASE, "grid": {"regularization.l3": [0.1]}}, False),  # no such field
        ({"base": BASE, "grid": {"regularization.l2": []}}, False),
    ],
)
def test_a_study_the_document_calls_valid_is_accepted_and_one_it_does_not_is_refused(
    client: httpx.Client, document: dict[str, Any], body: dict[str, Any], valid: bool
) -> None:
    assert schema_of(document, "StudyRequest")(body) is valid
    answer = client.post("/v1/studies", json=body)
    assert answer.status_code == (202 if valid else 422), answer.text
    if valid:
        client.post(f"/v1/studies/{answer.json()['id']}/cancel")


def test_a_grid_path_inside_another_is_a_422_naming_it(client: httpx.Client) -> None:
    # The document cannot say it (both paths are spec fields); it once was a 500.
    grid = {"regularization": [{"l2": 1e-4}], "regularization.dropout": [0.1]}
    answer = client.post("/v1/studies", json={"base": BASE, "grid": grid})
    assert answer.status_code == 422, answer.text
    (error,) = answer.json()["errors"]
    assert (error["field"], error["type"]) == ("grid.regularization.dropout", "overlapping_path")


def tag_filter(document: dict[str, Any]) -> Judge:
    (parameter,) = [p for p in document["paths"]["/v1/jobs"]["get"]["parameters"] if p["name"] == "tag"]
    validator = jsonschema_rs.validator_for(parameter["schema"]["items"])
    return lambda tag: bool(validator.is_valid(tag))


@pytest.mark.parametrize(
    ("tag", "valid"),
    [("team:vision", True), ("url:https://x", True), ("team:", True), ("", False), ("nocolon", False)],
)
def test_a_tag_filter_the_document_calls_valid_is_accepted(
    client: httpx.Client, document: dict[str, Any], tag: str, valid: bool
) -> None:
    assert tag_filter(document)(tag) is valid
    answer = client.get("/v1/jobs", params={"tag": tag})
    assert answer.status_code == (200 if valid else 422), answer.text
    if not valid:
        assert answer.json()["errors"][0]["field"] == "tag.0"


def test_two_values_of_one_tag_key_match_no_job(client: httpx.Client) -> None:
    job = client.post("/v1/jobs", json=tiny_spec(tags={"team": "a"}, **IDLE)).json()
    both = client.get("/v1/jobs", params=[("tag", "team:a"), ("tag", "team:b")])
    assert both.json() == {"items": [], "next_cursor": None}, "a job has one value per key"
    again = client.get("/v1/jobs", params=[("tag", "team:a"), ("tag", "team:a")]).json()["items"]
    assert job["id"] in [item["id"] for item in again], "the same tag twice is one filter"


def test_an_upload_needs_a_file_as_the_document_says(client: httpx.Client, document: dict[str, Any]) -> None:
    form = document["components"]["schemas"]["Body_upload_dataset"]
    assert "file" in form["required"]
    assert form["properties"]["file"]["minItems"] == 1
    answer = client.post("/v1/datasets", data={"name": "no file"}, files={"other": ("x.npz", b"")})
    assert answer.status_code == 422
    assert answer.json()["errors"][0]["field"] == "file"
