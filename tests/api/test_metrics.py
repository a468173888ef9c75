"""The plain metrics poll answers exactly as the documented route does, and only its own form;
what goes wrong in it is answered by the app.

A parameter given twice is never a plain poll, so ``?after_epoch=N&after_epoch=N`` reaches the
documented route with the same question: comparing the two answers compares the two routes.
"""

import asyncio
import json
import os
import uuid
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from starlette.routing import Match
from starlette.types import Message

from api.main import create_app
from api.problems import PROBLEM_JSON
from api.routes.plain_poll import HANDED_ON, PlainPoll, PlainPollRoute, plain_poll, requested_poll
from shared.auth.keys import KeyStore
from shared.errors import JobNotFound
from shared.jobs.store import JobStore
from shared.models.jobs import JobRecord, JobStatus, new_job_id
from shared.models.spec import JobSpec
from shared.redis.codec import connect
from shared.redis.keys import RedisKeys
from shared.settings import Settings
from tests.conftest import new_api_key, running_api
from tests.helpers import epoch_record

KEY = "kj_0123456789ab_" + "A" * 43
JOB = "0" * 24


@pytest.fixture
def store(settings_env: Settings) -> JobStore:
    """The store the suite's API reads (the shared fixture's has a prefix of its own)."""
    return JobStore.from_settings(settings_env)


def job_with_epochs(store: JobStore, tenant: str, epochs: int) -> str:
    """A running job of ``tenant`` with ``epochs`` epoch records; its id."""
    record = JobRecord.new(new_job_id(), tenant, JobSpec.model_validate({"name": "polled"}), None)
    store.create(record)
    store.change_status(record.id, JobStatus.RUNNING, new_attempt=True)
    for number in range(1, epochs + 1):
        store.append_epoch(record.id, epoch_record(number), None)
    return record.id


def both_routes(client: httpx.Client, job_id: str, query: str) -> tuple[httpx.Response, httpx.Response]:
    """The plain route's answer to ``query`` and the documented route's (a repeated parameter)."""
    plain = client.get(f"/v1/jobs/{job_id}/metrics?{query}")
    documented = client.get(f"/v1/jobs/{job_id}/metrics?{query}&{query}")
    return plain, documented


def same_answer(plain: httpx.Response, documented: httpx.Response) -> None:
    assert plain.status_code == documented.status_code
    assert plain.content == documented.content
    assert {k: v for k, v in plain.headers.items() if k != "date"} == {
        k: v for k, v in documented.headers.items() if k != "date"
    }


@pytest.mark.parametrize(
    ("query", "epochs"),
    [
        ("after_epoch=0", [1, 2, 3]),
        ("after_epoch=1", [2, 3]),
        ("after_epoch=3", []),
        ("after_epoch=1&limit=1", [2]),
    ],
)
def test_a_plain_poll_answers_as_the_documented_route(
    client: httpx.Client, store: JobStore, query: str, epochs: list[int]
) -> None:
    job_id = job_with_epochs(store, "tests", 3)
    plain, documented = both_routes(client, job_id, query)
    same_answer(plain, documented)
    assert plain.status_code == 200
    assert plain.headers["content-type"] == "application/json"
    assert plain.headers["x-content-type-options"] == "nosniff"
    page = plain.json()
    assert (page["job_id"], page["status"]) == (job_id, "running")
    assert [r["epoch"] for r in page["records"]] == epochs
    assert page["has_more"] is (query.endswith("limit=1"))


def test_the_whole_history_without_parameters(client: httpx.Client, store: JobStore) -> None:
    job_id = job_with_epochs(store, "tests", 2)
    page = client.get(f"/v1/jobs/{job_id}/metrics").json()
    assert [r["epoch"] for r in page["records"]] == [1, 2]
    assert (page["last_epoch"], page["has_more"]) == (2, False)


def test_another_tenants_job_and_an_unknown_one_are_404(
    client: httpx.Client, other_client: httpx.Client, store: JobStore
) -> None:
    job_id = job_with_epochs(store, "tests", 1)
    for asker, asked in ((other_client, job_id), (client, new_job_id())):
        plain, documented = both_routes(asker, asked, "after_epoch=0")
        same_answer(plain, documented)
        assert plain.status_code == 404
        assert plain.headers["content-type"] == PROBLEM_JSON
        assert plain.json()["instance"] == f"/v1/jobs/{asked}/metrics"


def test_a_revoked_key_is_refused_at_once(api_url: str, settings_env: Settings, store: JobStore) -> None:
    keys = KeyStore(connect(settings_env), RedisKeys(settings_env.key_prefix))
    info, key = keys.create("plain-revoked")
    job_id = job_with_epochs(store, "plain-revoked", 1)
    url = f"{api_url}/v1/jobs/{job_id}/metrics?after_epoch=0"
    headers = {"Authorization": f"Bearer {key}"}
    assert httpx.get(url, headers=headers).status_code == 200
    keys.revoke(info.id)
    refused = httpx.get(url, headers=headers)
    assert refused.status_code == 401
    assert refused.headers["content-type"] == PROBLEM_JSON
    assert refused.headers["www-authenticate"] == "Bearer"


def test_plain_polls_are_timed_under_the_route_template(client: httpx.Client, store: JobStore) -> None:
    job_id = job_with_epochs(store, "tests", 1)
    assert client.get(f"/v1/jobs/{job_id}/metrics?after_epoch=0").status_code == 200
    exposition = client.get("/metrics").text
    assert 'route="/v1/jobs/{job_id}/metrics"' in exposition
    assert job_id not in exposition


@pytest.fixture(scope="module")
def limited_url(settings_env: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    # A window long enough that the test never straddles two of them.
    limits = {"RATE_LIMIT_REQUESTS": "5", "RATE_LIMIT_WINDOW_SECONDS": "3600"}
    with running_api({**os.environ, **limits}, tmp_path_factory.mktemp("logs") / "plain-api.log") as url:
        yield url


def test_each_plain_poll_counts_once_against_the_rate(
    limited_url: str, settings_env: Settings, store: JobStore
) -> None:
    tenant = f"plain-{uuid.uuid4().hex[:8]}"
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


def scope(query: bytes, authorization: bytes | None = b"Bearer " + KEY.encode(), *more: Any) -> Any:
    headers = [(b"host", b"api")] + ([(b"authorization", authorization)] if authorization else [])
    return {"query_string": query, "headers": [*headers, *more]}


def settings(auth: bool = True, cors_origins: tuple[str, ...] = ()) -> Any:
    return SimpleNamespace(auth_enabled=auth, cors_origins=list(cors_origins))


def test_the_plain_form() -> None:
    parts = ("0123456789ab", "A" * 43)
    assert plain_poll(scope(b""), JOB, settings()) == PlainPoll(JOB, 0, None, parts)
    assert plain_poll(scope(b"after_epoch=99&limit=5&wait=0&x=y"), JOB, settings()) == PlainPoll(
        JOB, 99, 5, parts
    )
    assert plain_poll(scope(b"after_epoch=1&&", b"bearer  " + KEY.encode()), JOB, settings()) == PlainPoll(
        JOB, 1, None, parts
    )
    assert plain_poll(
        scope(b"", None, (b"content-length", b"0"), (b"authorization", b"Bearer " + KEY.encode())),
        JOB,
        settings(),
    ) == PlainPoll(JOB, 0, None, parts)


@pytest.mark.parametrize(
    "query",
    [
        b"wait=5",
        b"after_epoch=01",
        b"after_epoch=+1",
        b"after_epoch=",
        b"after_epoch",
        b"after_epoch=1001",
        b"limit=0",
        b"limit=1001",
        b"after_epoch=-1",
        b"after_epoch=1&after_epoch=2",
        b"after_epoch=%D9%A1",  # an Arabic-Indic one: a digit to str.isdigit, not to us
        b"after%5Fepoch=1",  # escaped: the documented route decodes it
        b"x=a+b",
    ],
)
def test_any_other_query_is_left_to_the_documented_route(query: bytes) -> None:
    assert plain_poll(scope(query), JOB, settings()) is None


@pytest.mark.parametrize("authorization", [None, b"Basic abc", b"Bearer nonsense", b"Bearer", KEY.encode()])
def test_a_missing_or_malformed_key_is_left_to_the_documented_route(authorization: bytes | None) -> None:
    assert plain_poll(scope(b"", authorization), JOB, settings()) is None


def test_a_malformed_id_or_auth_turned_off_is_left_to_the_documented_route() -> None:
    assert plain_poll(scope(b""), "not-a-job", settings()) is None
    assert plain_poll(scope(b""), JOB, settings(auth=False)) is None


def test_the_first_of_two_keys_is_the_one_checked_as_on_the_documented_route() -> None:
    second = (b"authorization", b"Bearer kj_ffffffffffff_" + b"B" * 43)
    poll = plain_poll(scope(b"", b"Bearer " + KEY.encode(), second), JOB, settings())
    assert poll is not None
    assert poll.key == ("0123456789ab", "A" * 43)


def test_a_body_or_a_cors_request_is_left_to_the_app() -> None:
    for header in ((b"content-length", b"5"), (b"transfer-encoding", b"chunked")):
        assert (
            plain_poll(
                scope(b"", None, header, (b"authorization", b"Bearer " + KEY.encode())), JOB, settings()
            )
            is None
        )
    origin = (b"origin", b"https://platform.example")
    assert plain_poll(scope(b"", b"Bearer " + KEY.encode(), origin), JOB, settings()) is not None
    assert (
        plain_poll(
            scope(b"", b"Bearer " + KEY.encode(), origin),
            JOB,
            settings(cors_origins=("https://platform.example",)),
        )
        is None
    )


def test_only_a_get_of_the_metrics_path_is_a_plain_poll() -> None:
    get = {**scope(b"after_epoch=2"), "type": "http", "method": "GET", "path": f"/v1/jobs/{JOB}/metrics"}
    assert requested_poll(get, settings()) == PlainPoll(JOB, 2, None, ("0123456789ab", "A" * 43))
    for other in (
        {"method": "POST"},
        {"method": "HEAD"},
        {"path": f"/v1/jobs/{JOB}"},
        {"path": f"/v1/jobs/{JOB}/metrics/"},
        {"path": f"/v1/jobs/{JOB}/events"},
        {"root_path": "/api"},
    ):
        assert requested_poll({**get, **other}, settings()) is None


def test_the_route_matches_only_a_poll_the_front_handed_on() -> None:
    route = PlainPollRoute()
    get = {"type": "http", "method": "GET", "path": f"/v1/jobs/{JOB}/metrics", "headers": []}
    assert route.matches(get)[0] is Match.NONE
    match, child = route.matches({**get, HANDED_ON: JobNotFound(JOB)})
    assert match is Match.FULL
    assert child["route"].path == "/v1/jobs/{job_id}/metrics"


def test_a_poll_after_redis_forgot_its_scripts(client: httpx.Client, store: JobStore) -> None:
    job_id = job_with_epochs(store, "tests", 2)
    assert client.get(f"/v1/jobs/{job_id}/metrics?after_epoch=1").status_code == 200
    store.redis.script_flush()  # as after a Redis restart
    page = client.get(f"/v1/jobs/{job_id}/metrics?after_epoch=1").json()
    assert [r["epoch"] for r in page["records"]] == [2]


def test_the_front_answers_a_plain_poll_itself_and_hands_on_what_went_wrong(
    settings_env: Settings, store: JobStore
) -> None:
    job_id = job_with_epochs(store, "tests", 2)
    authorization = f"Bearer {new_api_key(settings_env, 'tests')}".encode()
    app = create_app()

    async def front(job: str) -> tuple[bool, list[Message], Any]:
        asked = {
            **scope(b"after_epoch=1", authorization),
            "type": "http",
            "method": "GET",
            "path": f"/v1/jobs/{job}/metrics",
        }
        sent: list[Message] = []

        async def send(message: Message) -> None:
            sent.append(message)

        async with app.router.lifespan_context(app):
            answered = await app.plain_polls.answered(app, asked, send)
        return answered, sent, asked.get(HANDED_ON)

    answered, sent, handed_on = asyncio.run(front(job_id))
    assert (answered, handed_on) == (True, None)
    assert sent[0]["status"] == 200
    assert [record["epoch"] for record in json.loads(sent[1]["body"])["records"]] == [2]
    unknown = new_job_id()
    answered, sent, handed_on = asyncio.run(front(unknown))
    assert (answered, sent) == (False, [])
    assert isinstance(handed_on, JobNotFound)
