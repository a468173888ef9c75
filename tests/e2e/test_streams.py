"""Following a job live: the Server-Sent Events stream and the long poll."""

import json
import time
from typing import Any

import httpx
import pytest

from tests.helpers import tiny_spec, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("worker")]


def read_events(client: httpx.Client, job_id: str, **headers: str) -> list[tuple[str, str, Any]]:
    """Every event of the stream, as (id, event, data), until the server ends it."""
    events, fields = [], {}
    with client.stream("GET", f"/v1/jobs/{job_id}/events", headers=headers, timeout=120) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        for line in response.iter_lines():
            if not line:
                if "event" in fields:
                    events.append((fields["id"], fields["event"], json.loads(fields["data"])))
                fields = {}
            elif not line.startswith(":"):
                name, _, value = line.partition(": ")
                fields[name] = value
    return events


def test_the_stream_delivers_every_epoch_once_in_order_and_ends(client: httpx.Client) -> None:
    job_id = client.post("/v1/jobs", json=tiny_spec(training={"epochs": 3})).json()["id"]
    events = read_events(client, job_id)
    epochs = [(event_id, data["epoch"]) for event_id, kind, data in events if kind == "epoch"]
    assert epochs == [("1", 1), ("2", 2), ("3", 3)]
    states = [data["status"] for _, kind, data in events if kind == "state"]
    assert states[-1] == "succeeded"
    assert events[-1][1] == "state", "the stream ends after the final state"


def test_the_stream_resumes_after_last_event_id(client: httpx.Client) -> None:
    job_id = client.post("/v1/jobs", json=tiny_spec(training={"epochs": 3})).json()["id"]
    read_events(client, job_id)
    resumed = read_events(client, job_id, **{"Last-Event-ID": "2"})
    assert [data["epoch"] for _, kind, data in resumed if kind == "epoch"] == [3]
    assert resumed[-1][2] == {"status": "succeeded", "last_epoch": 3}


def test_an_unknown_job_s_stream_is_a_404(client: httpx.Client) -> None:
    assert client.get(f"/v1/jobs/{'0' * 24}/events").status_code == 404


def test_the_long_poll_answers_as_soon_as_a_record_arrives(client: httpx.Client) -> None:
    spec = tiny_spec(dataset={"train_limit": 1200}, training={"epochs": 30, "batch_size": 8})
    job_id = client.post("/v1/jobs", json=spec).json()["id"]
    first = wait_for(lambda: client.get(f"/v1/jobs/{job_id}/metrics").json()["last_epoch"], timeout=120)
    started = time.monotonic()
    page = client.get(f"/v1/jobs/{job_id}/metrics", params={"after_epoch": first, "wait": 60}).json()
    waited = time.monotonic() - started
    assert [record["epoch"] for record in page["records"]][:1] == [first + 1]
    assert waited < 30, "it answered when the epoch arrived, not at the end of the wait"
    client.post(f"/v1/jobs/{job_id}/cancel")
    ended = client.get(f"/v1/jobs/{job_id}/metrics", params={"after_epoch": 1000, "wait": 60}, timeout=90)
    assert ended.json()["status"] in ("cancelling", "cancelled")


def test_the_long_poll_of_an_ended_job_answers_at_once(client: httpx.Client) -> None:
    job_id = client.post("/v1/jobs", json=tiny_spec(resources={"queue": "gpu"})).json()["id"]
    client.post(f"/v1/jobs/{job_id}/cancel")
    started = time.monotonic()
    page = client.get(f"/v1/jobs/{job_id}/metrics", params={"wait": 30}).json()
    assert (page["status"], page["records"]) == ("cancelled", [])
    assert time.monotonic() - started < 5
