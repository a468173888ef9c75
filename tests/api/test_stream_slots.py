"""Event streams and long polls against a real API process: a cap of open streams per API key,
and every wait of the process on one pub/sub connection, so one client's streams cannot crowd
out another tenant's requests."""

import os
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass

import httpx
import pytest
from redis import Redis

from shared.redis.connection import connect
from shared.settings import Settings
from tests.conftest import new_api_key, running_api
from tests.helpers import tiny_spec, wait_for

PER_KEY = 3
# The gpu queue has no worker in the suite: its jobs stay queued, and their streams stay open.
WAITING_SPEC = tiny_spec(resources={"queue": "gpu"})


@pytest.fixture(scope="module")
def capped_api(settings_env: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    env = {**os.environ, "MAX_STREAMS_PER_KEY": str(PER_KEY), "RATE_LIMIT_REQUESTS": "100000"}
    with running_api(env, tmp_path_factory.mktemp("logs") / "capped-api.log") as url:
        yield url


def client_of(url: str, settings: Settings, tenant: str) -> httpx.Client:
    headers = {"Authorization": f"Bearer {new_api_key(settings, tenant)}"}
    return httpx.Client(base_url=url, headers=headers, timeout=30)


@dataclass
class HeldStream:
    """An event stream held open, and its lines: dropping the iterator would close the connection."""

    response: httpx.Response
    lines: Iterator[str]

    @property
    def status_code(self) -> int:
        return self.response.status_code

    def close(self) -> None:
        self.response.close()


def open_stream(streams: ExitStack, client: httpx.Client, job_id: str) -> HeldStream:
    """An event stream held open in ``streams``, once its first event has come."""
    response = streams.enter_context(client.stream("GET", f"/v1/jobs/{job_id}/events"))
    held = HeldStream(response, response.iter_lines())
    if response.status_code == 200:
        next(line for line in held.lines if line.startswith("event: state"))
    return held


def subscribed_connections(redis: Redis) -> list[int]:
    """How many channels each connection of Redis that has subscriptions is subscribed to."""
    return [int(c["sub"]) for c in redis.client_list() if int(c.get("sub", 0)) > 0]


def test_a_key_holds_at_most_its_streams_and_long_polls_and_others_go_on(
    capped_api: str, settings_env: Settings
) -> None:
    with (
        client_of(capped_api, settings_env, "streamer") as streamer,
        client_of(capped_api, settings_env, "bystander") as bystander,
        ExitStack() as streams,
    ):
        job_id = streamer.post("/v1/jobs", json=WAITING_SPEC).json()["id"]
        held = [open_stream(streams, streamer, job_id) for _ in range(PER_KEY)]
        assert [r.status_code for r in held] == [200] * PER_KEY
        refused = streamer.get(f"/v1/jobs/{job_id}/events")
        assert refused.status_code == 429
        assert refused.headers["content-type"] == "application/problem+json"
        assert "event streams and long polls" in refused.json()["detail"]
        long_poll = streamer.get(f"/v1/jobs/{job_id}/metrics", params={"wait": 5})
        assert long_poll.status_code == 429
        assert streamer.get(f"/v1/jobs/{job_id}/metrics").status_code == 200, "a plain poll holds nothing"
        other_job = bystander.post("/v1/jobs", json=WAITING_SPEC).json()["id"]
        other = open_stream(streams, bystander, other_job)
        assert other.status_code == 200, "another key's streams go on"
        held[0].close()
        reopened = wait_for(
            lambda: (
                (r := streamer.get(f"/v1/jobs/{job_id}/metrics", params={"wait": 1})).status_code == 200 and r
            ),
            timeout=10,
            what="the closed stream's slot to come back",
        )
        assert reopened.json()["records"] == []


def test_every_wait_of_an_api_process_shares_one_pub_sub_connection(
    capped_api: str, settings_env: Settings
) -> None:
    redis = connect(settings_env)
    jobs, held = 3, []
    with ExitStack() as streams:
        clients = [
            streams.enter_context(client_of(capped_api, settings_env, f"many-{n}")) for n in range(jobs)
        ]
        for client in clients:
            job_id = client.post("/v1/jobs", json=WAITING_SPEC).json()["id"]
            held += [open_stream(streams, client, job_id) for _ in range(PER_KEY)]
        assert [stream.status_code for stream in held] == [200] * jobs * PER_KEY
        assert subscribed_connections(redis) == [jobs], "nine streams of three jobs: one connection"
    wait_for(lambda: not subscribed_connections(redis), timeout=10, what="the channels to be left")


def test_a_stream_across_a_redis_connection_reset_still_delivers(
    capped_api: str, settings_env: Settings
) -> None:
    redis = connect(settings_env)
    with client_of(capped_api, settings_env, "reset") as client, ExitStack() as streams:
        job_id = client.post("/v1/jobs", json=WAITING_SPEC).json()["id"]
        stream = open_stream(streams, client, job_id)
        (pubsub,) = [c for c in redis.client_list() if int(c.get("sub", 0)) > 0]
        redis.client_kill_filter(_id=pubsub["id"])
        resubscribed = lambda: subscribed_connections(redis) == [1]  # noqa: E731
        wait_for(resubscribed, timeout=10, what="the channel subscribed again on a new connection")
        assert client.post(f"/v1/jobs/{job_id}/cancel").status_code == 200
        data = next(line for line in stream.lines if line.startswith("data:") and "cancelled" in line)
        assert '"status": "cancelled"' in data
