"""``GET /metrics``: the deployment's counters from Redis and the API's request latency, for the
operator token only."""

from collections.abc import Callable

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.helpers import tiny_spec, wait_for

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(operator: httpx.Client) -> Samples:
    """Every sample of one scrape, by name and sorted labels."""
    response = operator.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def sample(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def change(before: Samples, after: Samples) -> Callable[..., float]:
    return lambda name, **labels: sample(after, name, **labels) - sample(before, name, **labels)


def test_a_submission_and_a_cancellation_are_counted(client: httpx.Client, operator: httpx.Client) -> None:
    before = scrape(operator)
    job = client.post("/v1/jobs", json=tiny_spec(resources={"queue": "gpu"})).json()
    queued = scrape(operator)
    delta = change(before, queued)
    assert delta("kjobs_jobs_submitted_total") == 1
    assert delta("kjobs_jobs", status="queued") == 1
    # It waits for a slot (the gpu queue has no worker): no message is sent to Celery yet.
    assert delta("kjobs_jobs_waiting", queue="gpu", priority="normal") == 1
    assert delta("kjobs_queue_depth", queue="gpu") == 0
    client.post(f"/v1/jobs/{job['id']}/cancel")
    delta = change(queued, scrape(operator))
    assert delta("kjobs_jobs_waiting", queue="gpu", priority="normal") == -1
    assert delta("kjobs_jobs", status="queued") == -1
    assert delta("kjobs_jobs", status="cancelled") == 1
    assert delta("kjobs_jobs_finished_total", outcome="cancelled") == 1


def test_request_latency_is_labelled_by_route_template(client: httpx.Client, operator: httpx.Client) -> None:
    before = scrape(operator)
    assert client.get("/v1/jobs/0123456789abcdef0123456789abcdef").status_code == 404
    delta = change(before, scrape(operator))
    route = {"route": "/v1/jobs/{job_id}", "method": "GET", "status": "404"}
    assert delta("kjobs_api_request_duration_seconds_count", **route) == 1
    assert delta("kjobs_api_request_duration_seconds_bucket", le="+Inf", **route) == 1


def test_live_workers_are_counted_per_queue(operator: httpx.Client, worker: str) -> None:
    assert sample(scrape(operator), "kjobs_workers", queue="cpu") >= 1


@pytest.mark.e2e
def test_epoch_durations_and_outcomes_come_from_the_workers(
    client: httpx.Client, operator: httpx.Client, worker: str
) -> None:
    before = scrape(operator)
    job = client.post("/v1/jobs", json=tiny_spec()).json()
    wait_for(lambda: client.get(f"/v1/jobs/{job['id']}").json()["status"] == "succeeded", 120, what="the job")
    delta = change(before, scrape(operator))
    assert delta("kjobs_epoch_duration_seconds_count") == 2
    assert delta("kjobs_epoch_duration_seconds_bucket", le="+Inf") == 2
    assert delta("kjobs_epoch_duration_seconds_sum") > 0
    assert delta("kjobs_jobs_finished_total", outcome="succeeded") == 1
    assert delta("kjobs_jobs", status="succeeded") == 1
