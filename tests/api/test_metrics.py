"""The metrics poll: its pages, its key check and rate count in the same Redis read, its errors
as problem documents, and its timing under the route's template."""

import os
import uuid
from collections.abc import Iterator

import httpx
import pytest

from api.problems import PROBLEM_JSON
from shared.auth.keys import KeyStore
from shared.jobs.store import JobStore
from shared.models.jobs import JobRecord, JobStatus, new_job_id
from shared.models.spec import JobSpec
from shared.redis.connection import connect
from shared.redis.keys import RedisKeys
from shared.settings import Settings
from tests.conftest import new_api_key, running_api
from tests.helpers import epoch_record


@pytest.fixture
def store(settings_env: Settings) -> JobStore:
    """The store the suite's API reads (the shared fixture's has a prefix of its own)."""
    return JobStore.from_settings(settings_env)


def job_with_epochs(store: JobStore, tenant: str, epochs: int) -> str:
    """A running job of ``tenant`` with ``epochs`` epoch records; its id."""
    record = JobRecord.new(new_job_id(), tenant, JobSpec.model_validate({"name": "polled"}), "cpu")
    store.create(record)
    store.change_status(record.id, JobStatus.RUNNING, new_attempt=True)
    for number in range(1, epochs + 1):
        store.append_epoch(record.id, epoch_record(number), None)
    return record.id


@pytest.mark.parametrize(
    ("query", "epochs"),
    [
        ("after_epoch=0", [1, 2, 3]),
        ("after_epoch=1", [2, 3]),
        ("after_epoch=3", []),
        ("after_epoch=1&limit=1", [2]),
        ("after%5Fepoch=1", [2, 3]),  # an escaped name is decoded like any query
        ("after_epoch=%31", [2, 3]),
    ],
)
def test_a_poll_answers_the_records_after_its_cursor(
    client: httpx.Client, store: JobStore, query: str, epochs: list[int]
) -> None:
    job_id = job_with_epochs(store, "tests", 3)
    answer = client.get(f"/v1/jobs/{job_id}/metrics?{query}")
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/json"
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert answer.headers["cache-control"] == "no-store"
    page = answer.json()
    assert (page["job_id"], page["status"]) == (job_id, "running")
    assert [r["epoch"] for r in page["records"]] == epochs
    assert page["has_more"] is (query.endswith("limit=1"))


def test_the_whole_history_without_parameters(client: httpx.Client, store: JobStore) -> None:
    job_id = job_with_epochs(store, "tests", 2)
    page = client.get(f"/v1/jobs/{job_id}/metrics").json()
    assert [r["epoch"] for r in page["records"]] == [1, 2]
    assert (page["last_epoch"], page["has_more"]) == (2, False)


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("after_epoch=-1", "after_epoch"),
        ("limit=0", "limit"),
        ("wait=61", "wait"),
        ("after_epoch=x", "after_epoch"),
    ],
)
def test_a_bad_query_is_a_problem_naming_the_parameter(
    client: httpx.Client, store: JobStore, query: str, field: str
) -> None:
    job_id = job_with_epochs(store, "tests", 1)
    refused = client.get(f"/v1/jobs/{job_id}/metrics?{query}")
    assert refused.status_code == 422
    assert refused.headers["content-type"] == PROBLEM_JSON
    assert [(e["field"], e["location"]) for e in refused.json()["errors"]] == [(field, "query")]


def test_another_tenants_job_an_unknown_one_and_a_malformed_id_are_404(
    client: httpx.Client, other_client: httpx.Client, store: JobStore
) -> None:
    job_id = job_with_epochs(store, "tests", 1)
    for asker, asked in ((other_client, job_id), (client, new_job_id()), (client, "not-a-job")):
        answer = asker.get(f"/v1/jobs/{asked}/metrics?after_epoch=0")
        assert answer.status_code == 404
        assert answer.headers["content-type"] == PROBLEM_JSON
        assert answer.json()["instance"] == f"/v1/jobs/{asked}/metrics"


@pytest.mark.parametrize(
    "authorization",
    [[], [("Authorization", "Basic abc")], [("Authorization", "Bearer nonsense")], [("Authorization", "")]],
)
def test_without_a_valid_key_a_poll_is_401(
    api_url: str, store: JobStore, authorization: list[tuple[str, str]]
) -> None:
    job_id = job_with_epochs(store, "tests", 1)
    refused = httpx.get(f"{api_url}/v1/jobs/{job_id}/metrics", headers=authorization)
    assert refused.status_code == 401
    assert refused.headers["content-type"] == PROBLEM_JSON
    assert refused.headers["www-authenticate"] == "Bearer"


def test_the_first_of_two_authorization_headers_is_the_one_checked(
    api_url: str, settings_env: Settings, store: JobStore
) -> None:
    job_id = job_with_epochs(store, "tests", 1)
    valid = f"Bearer {new_api_key(settings_env, 'tests')}"
    url = f"{api_url}/v1/jobs/{job_id}/metrics"
    assert httpx.get(url, headers=[("Authorization", valid), ("Authorization", "")]).status_code == 200
    assert httpx.get(url, headers=[("Authorization", ""), ("Authorization", valid)]).status_code == 401


def test_a_revoked_key_is_refused_at_once(api_url: str, settings_env: Settings, store: JobStore) -> None:
    keys = KeyStore(connect(settings_env), RedisKeys(settings_env.key_prefix))
    info, key = keys.create("poll-revoked")
    job_id = job_with_epochs(store, "poll-revoked", 1)
    url = f"{api_url}/v1/jobs/{job_id}/metrics?after_epoch=0"
    headers = {"Authorization": f"Bearer {key}"}
    assert httpx.get(url, headers=headers).status_code == 200
    keys.revoke(info.id)
    refused = httpx.get(url, headers=headers)
    assert refused.status_code == 401
    assert refused.headers["content-type"] == PROBLEM_JSON


def test_polls_are_timed_under_the_route_template(
    client: httpx.Client, operator: httpx.Client, store: JobStore
) -> None:
    job_id = job_with_epochs(store, "tests", 1)
    assert client.get(f"/v1/jobs/{job_id}/metrics?after_epoch=0").status_code == 200
    assert client.get(f"/v1/jobs/{new_job_id()}/metrics").status_code == 404
    exposition = operator.get("/metrics").text
    for status in ("200", "404"):
        assert f'route="/v1/jobs/{{job_id}}/metrics",status="{status}"' in exposition
    assert job_id not in exposition


@pytest.fixture(scope="module")
def limited_url(settings_env: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    # A window long enough that the test never straddles two of them.
    limits = {"RATE_LIMIT_REQUESTS": "5", "RATE_LIMIT_WINDOW_SECONDS": "3600"}
    with running_api({**os.environ, **limits}, tmp_path_factory.mktemp("logs") / "poll-api.log") as url:
        yield url


def test_each_poll_counts_once_against_the_rate(
    limited_url: str, settings_env: Settings, store: JobStore
) -> None:
    tenant = f"poll-{uuid.uuid4().hex[:8]}"
    headers = {"Authorization": f"Bearer {new_api_key(settings_env, tenant)}"}
    job_id = job_with_epochs(store, tenant, 1)
    with httpx.Client(base_url=limited_url, headers=headers, timeout=10) as limited:
        codes = [limited.get(f"/v1/jobs/{job_id}/metrics?after_epoch=0").status_code for _ in range(3)]
        codes += [limited.get(f"/v1/jobs/{new_job_id()}/metrics").status_code for _ in range(2)]
        refused = limited.get(f"/v1/jobs/{job_id}/metrics?after_epoch=0")
    assert codes == [200, 200, 200, 404, 404]
    assert refused.status_code == 429
    assert refused.headers["content-type"] == PROBLEM_JSON
    assert int(refused.headers["retry-after"]) > 0


def test_a_poll_after_redis_forgot_its_scripts(client: httpx.Client, store: JobStore) -> None:
    job_id = job_with_epochs(store, "tests", 2)
    assert client.get(f"/v1/jobs/{job_id}/metrics?after_epoch=1").status_code == 200
    store.redis.script_flush()  # as after a Redis restart
    page = client.get(f"/v1/jobs/{job_id}/metrics?after_epoch=1").json()
    assert [r["epoch"] for r in page["records"]] == [2]


@pytest.fixture(scope="module")
def proxied_url(settings_env: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The API as served behind a proxy: mounted under a path prefix, open to one web origin."""
    env = {**os.environ, "CORS_ORIGINS": '["https://app.example"]'}
    log = tmp_path_factory.mktemp("logs") / "proxied-api.log"
    with running_api(env, log, ["--root-path", "/kjobs"]) as url:
        yield url


def test_behind_a_proxy_polls_keep_their_headers_and_errors(
    proxied_url: str, settings_env: Settings, store: JobStore
) -> None:
    job_id = job_with_epochs(store, "tests", 2)
    headers = {
        "Authorization": f"Bearer {new_api_key(settings_env, 'tests')}",
        "Origin": "https://app.example",
    }
    answer = httpx.get(f"{proxied_url}/v1/jobs/{job_id}/metrics?after_epoch=1", headers=headers)
    assert answer.status_code == 200
    assert [r["epoch"] for r in answer.json()["records"]] == [2]
    assert answer.headers["access-control-allow-origin"] == "https://app.example"
    assert answer.headers["x-content-type-options"] == "nosniff"
    refused = httpx.get(f"{proxied_url}/v1/jobs/{job_id}/metrics?limit=0", headers=headers)
    assert refused.status_code == 422
    assert refused.headers["access-control-allow-origin"] == "https://app.example"
    assert refused.json()["instance"] == f"/kjobs/v1/jobs/{job_id}/metrics"
