"""Authentication, tenant isolation, idempotent submission and request hardening."""

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from api.problems import PROBLEM_JSON
from shared.auth.keys import KeyStore
from shared.redis.connection import connect
from shared.redis.keys import RedisKeys
from shared.settings import Settings
from tests.conftest import new_api_key, running_api
from tests.helpers import tiny_spec

IDLE = tiny_spec(resources={"queue": "gpu"})  # no test worker consumes the gpu queue


def submit(client: httpx.Client, body: dict[str, Any] | None = None, **headers: str) -> httpx.Response:
    return client.post("/v1/jobs", json=body or IDLE, headers=headers)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/jobs"),
        ("POST", "/v1/jobs"),
        ("GET", "/v1/presets"),
        ("GET", f"/v1/jobs/{'0' * 24}/metrics"),
    ],
)
def test_no_key_is_a_401(api_url: str, method: str, path: str) -> None:
    response = httpx.request(method, f"{api_url}{path}", json=IDLE)
    assert response.status_code == 401
    assert response.headers["content-type"] == PROBLEM_JSON
    assert response.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize("key", ["nonsense", "kj_000000000000_" + "a" * 43, "Basic abc"])
def test_a_bad_key_is_a_401(api_url: str, key: str) -> None:
    response = httpx.get(f"{api_url}/v1/jobs", headers={"Authorization": f"Bearer {key}"})
    assert response.status_code == 401


def test_liveness_needs_no_key(api_url: str) -> None:
    assert httpx.get(f"{api_url}/healthz").json() == {"status": "ok"}


@pytest.mark.parametrize("path", ["/readyz", "/metrics"])
@pytest.mark.parametrize("credential", ["none", "tenant key", "wrong token"])
def test_the_operator_routes_take_only_the_operator_token(
    api_url: str, client: httpx.Client, operator: httpx.Client, path: str, credential: str
) -> None:
    presented = {
        "none": {},
        "tenant key": {"Authorization": client.headers["Authorization"]},  # valid, but a tenant's
        "wrong token": {"Authorization": f"Bearer {'x' * 43}"},
    }[credential]
    refused = httpx.get(f"{api_url}{path}", headers=presented)
    assert refused.status_code == 401
    assert refused.headers["content-type"] == PROBLEM_JSON
    assert refused.headers["www-authenticate"] == "Bearer"
    assert "OPERATOR_TOKEN" in refused.json()["detail"]
    assert "kjobs_" not in refused.text
    assert "live_workers" not in refused.text
    assert operator.get(path).status_code == 200


def test_the_operator_routes_refuse_everyone_without_an_operator_token(
    settings_env: Settings, tmp_path: Path
) -> None:
    env = {key: value for key, value in os.environ.items() if key != "OPERATOR_TOKEN"}
    with running_api(env, tmp_path / "api.log") as url:
        guess = {"Authorization": f"Bearer {'x' * 43}"}
        for path in ("/readyz", "/metrics"):
            assert httpx.get(f"{url}{path}").status_code == 401
            assert httpx.get(f"{url}{path}", headers=guess).status_code == 401
        assert httpx.get(f"{url}/healthz").status_code == 200
    assert "OPERATOR_TOKEN is not set" in (tmp_path / "api.log").read_text()


def test_without_auth_the_operator_routes_are_open(settings_env: Settings, tmp_path: Path) -> None:
    with running_api({**os.environ, "AUTH_ENABLED": "false"}, tmp_path / "api.log") as url:
        ready = httpx.get(f"{url}/readyz").json()
        assert (ready["ready"], ready["auth"]) == (True, "disabled")
        assert "kjobs_jobs" in httpx.get(f"{url}/metrics").text


def test_a_revoked_key_stops_working(api_url: str, settings_env: Settings) -> None:
    keys = KeyStore(connect(settings_env), RedisKeys(settings_env.key_prefix))
    info, key = keys.create("revoked-tenant")
    headers = {"Authorization": f"Bearer {key}"}
    assert httpx.get(f"{api_url}/v1/jobs", headers=headers).status_code == 200
    assert keys.revoke(info.id) is True
    assert httpx.get(f"{api_url}/v1/jobs", headers=headers).status_code == 401


def test_keys_are_stored_only_as_hashes(settings_env: Settings) -> None:
    redis = connect(settings_env)
    keys = KeyStore(redis, RedisKeys(settings_env.key_prefix))
    info, key = keys.create("hash-tenant")
    stored = redis.hgetall(RedisKeys(settings_env.key_prefix).api_key(info.id))
    secret = key.rsplit("_", 1)[1]
    assert secret not in str(stored)
    assert len(stored["hash"]) == 64


def test_another_tenant_s_job_is_a_404_everywhere(client: httpx.Client, other_client: httpx.Client) -> None:
    job_id = submit(client).json()["id"]
    for method, path in [("GET", ""), ("GET", "/metrics"), ("GET", "/model"), ("POST", "/cancel")]:
        response = other_client.request(method, f"/v1/jobs/{job_id}{path}")
        assert response.status_code == 404, path
        assert response.json()["detail"] == f"no job with id {job_id!r}"
    assert job_id not in [job["id"] for job in other_client.get("/v1/jobs").json()["items"]]
    assert client.get(f"/v1/jobs/{job_id}").json()["status"] == "queued", "its owner still sees it"


def test_the_same_idempotency_key_and_body_returns_the_first_job(client: httpx.Client) -> None:
    key = uuid.uuid4().hex
    first = submit(client, **{"Idempotency-Key": key})
    again = submit(client, **{"Idempotency-Key": key})
    assert (first.status_code, again.status_code) == (202, 202)
    assert again.json()["id"] == first.json()["id"]
    assert again.headers["idempotent-replayed"] == "true"
    tag = {"tags": {"idem": key}}
    tagged = [submit(client, IDLE | tag, **{"Idempotency-Key": f"{key}-t"}) for _ in range(3)]
    listed = client.get("/v1/jobs", params={"tag": f"idem:{key}"}).json()["items"]
    assert [job["id"] for job in listed] == [tagged[0].json()["id"]], "three requests, one job"


def test_the_same_idempotency_key_with_another_body_is_a_409(client: httpx.Client) -> None:
    key = uuid.uuid4().hex
    assert submit(client, **{"Idempotency-Key": key}).status_code == 202
    other = submit(client, IDLE | {"name": "another"}, **{"Idempotency-Key": key})
    assert other.status_code == 409
    assert "different request" in other.json()["detail"]


def test_idempotency_keys_belong_to_their_tenant(client: httpx.Client, other_client: httpx.Client) -> None:
    key = uuid.uuid4().hex
    mine, theirs = (
        submit(client, **{"Idempotency-Key": key}),
        submit(other_client, **{"Idempotency-Key": key}),
    )
    assert mine.json()["id"] != theirs.json()["id"]


def test_a_10_mb_body_is_a_413(client: httpx.Client) -> None:
    response = client.post(
        "/v1/jobs", content=b"{" + b" " * 10_000_000 + b"}", headers={"content-type": "application/json"}
    )
    assert response.status_code == 413
    assert response.headers["content-type"] == PROBLEM_JSON


def test_a_chunked_body_over_the_limit_is_a_413(client: httpx.Client) -> None:
    chunks = (b" " * 65536 for _ in range(40))
    response = client.post("/v1/jobs", content=chunks, headers={"content-type": "application/json"})
    assert response.status_code == 413


def test_spec_caps_name_their_limit(client: httpx.Client, settings_env: Settings) -> None:
    response = submit(client, tiny_spec(model={"hidden_layers": [8192, 8192, 8192]}))
    assert response.status_code == 422
    (error,) = response.json()["errors"]
    assert error["field"] == "model.hidden_layers"
    assert f"{settings_env.max_model_parameters:,}" in error["message"]
    assert f"{785 * 8192 + 2 * 8193 * 8192 + 8193 * 10:,}" in error["message"]  # the model's own count


def test_responses_carry_security_headers_and_no_cors(client: httpx.Client) -> None:
    response = client.get("/v1/presets", headers={"Origin": "https://elsewhere.example"})
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["cache-control"] == "no-store"
    assert "access-control-allow-origin" not in response.headers


def test_no_traceback_or_internal_path_in_errors(client: httpx.Client) -> None:
    bodies = [submit(client, {"model": {"hidden_layers": "x"}}).text, client.get("/v1/jobs/%00").text]
    for body in bodies:
        assert "Traceback" not in body
        assert ".py" not in body
        assert "site-packages" not in body


@pytest.fixture(scope="module")
def guarded_url(settings_env: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """An API behind a trusted proxy (so each test client can say its own address), with a rate
    of 5 requests per key and 3 failed key checks per address."""
    env = {
        **os.environ,
        "RATE_LIMIT_REQUESTS": "5",
        "RATE_LIMIT_WINDOW_SECONDS": "3600",
        "AUTH_FAILURE_LIMIT": "3",
    }
    options = ["--proxy-headers", "--forwarded-allow-ips", "127.0.0.1"]
    with running_api(env, tmp_path_factory.mktemp("logs") / "guarded-api.log", options) as url:
        yield url


def from_address(address: str, key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}", "X-Forwarded-For": address}


def test_a_key_id_with_a_wrong_secret_cannot_use_up_the_tenants_rate(
    guarded_url: str, settings_env: Settings
) -> None:
    tenant = f"locked-{uuid.uuid4().hex[:8]}"
    key = new_api_key(settings_env, tenant)
    forged = f"kj_{key.split('_')[1]}_{'A' * 43}"  # the key's id (hex), another secret
    attacker = [
        httpx.get(f"{guarded_url}/v1/jobs", headers=from_address("203.0.113.7", forged)).status_code
        for _ in range(5)
    ]
    assert attacker == [401, 401, 401, 429, 429], "the address is throttled after 3 failures"
    refused = httpx.get(f"{guarded_url}/v1/jobs", headers=from_address("203.0.113.7", forged))
    assert refused.headers["content-type"] == PROBLEM_JSON
    assert int(refused.headers["retry-after"]) > 0
    # The tenant, from its own address, still has its whole rate: the forged requests counted nothing.
    own = [
        httpx.get(f"{guarded_url}/v1/jobs", headers=from_address("198.51.100.2", key)).status_code
        for _ in range(6)
    ]
    assert own == [200] * 5 + [429]
