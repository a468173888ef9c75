"""Retries against the real API: a submission whose answer is lost is sent again under the same
``Idempotency-Key`` and creates one job; other writes are not repeated blindly."""

import asyncio
import uuid

import pytest

from client import AsyncKJobsClient, KJobsClient, ServiceUnreachable
from tests.client.conftest import QUICK_RETRIES
from tests.client.transports import AsyncDroppingTransport, DroppingTransport, ThrottlingTransport, posts_to
from tests.helpers import free_port, tiny_spec


def queued_spec(run: str) -> dict[str, object]:
    """A job for the queue no test worker serves, so it stays queued, tagged with ``run``."""
    return tiny_spec(tags={"run": run}, resources={"queue": "gpu"})


def test_a_submission_whose_answer_is_lost_creates_one_job(api_url: str, api_key: str) -> None:
    run = uuid.uuid4().hex
    transport = DroppingTransport(posts_to("/v1/jobs"))
    with KJobsClient(api_url, api_key, retry=QUICK_RETRIES, transport=transport) as kjobs:
        job = kjobs.submit(queued_spec(run))
        listed = kjobs.list_jobs(tag={"run": run})
        kjobs.cancel(job.id)
    assert [item.id for item in listed.items] == [job.id]
    keys = {request.headers["Idempotency-Key"] for request in transport.seen}
    assert len(transport.seen) == 2
    assert len(keys) == 1, "the retry carried the first try's key"


def test_each_submission_has_a_key_of_its_own(kjobs: KJobsClient) -> None:
    run = uuid.uuid4().hex
    first, second = kjobs.submit(queued_spec(run)), kjobs.submit(queued_spec(run))
    assert first.id != second.id
    assert len(kjobs.list_jobs(tag={"run": run}).items) == 2
    for job in (first, second):
        kjobs.cancel(job.id)


def test_the_async_client_retries_a_lost_submission_once(api_url: str, api_key: str) -> None:
    run = uuid.uuid4().hex
    transport = AsyncDroppingTransport(posts_to("/v1/jobs"))

    async def scenario() -> tuple[str, list[str]]:
        async with AsyncKJobsClient(api_url, api_key, retry=QUICK_RETRIES, transport=transport) as kjobs:
            job = await kjobs.submit(queued_spec(run))
            listed = await kjobs.list_jobs(tag={"run": run})
            await kjobs.cancel(job.id)
            return job.id, [item.id for item in listed.items]

    job_id, listed_ids = asyncio.run(scenario())
    assert listed_ids == [job_id]
    assert len(transport.seen) == 2


def test_a_cancel_whose_answer_is_lost_is_not_sent_again(api_url: str, api_key: str) -> None:
    with KJobsClient(api_url, api_key, retry=QUICK_RETRIES) as plain:
        job = plain.submit(queued_spec(uuid.uuid4().hex))
    transport = DroppingTransport(posts_to(f"/v1/jobs/{job.id}/cancel"))
    with KJobsClient(api_url, api_key, retry=QUICK_RETRIES, transport=transport) as kjobs:
        with pytest.raises(ServiceUnreachable, match="connection reset"):
            kjobs.cancel(job.id)
        assert kjobs.get_job(job.id).status == "cancelled", "the one cancel reached the service"
    assert len(transport.seen) == 1


def test_a_429_is_retried_after_its_retry_after(api_url: str, api_key: str) -> None:
    run = uuid.uuid4().hex
    transport = ThrottlingTransport(posts_to("/v1/jobs"))
    with KJobsClient(api_url, api_key, retry=QUICK_RETRIES, transport=transport) as kjobs:
        job = kjobs.submit(queued_spec(run))
        assert [item.id for item in kjobs.list_jobs(tag={"run": run}).items] == [job.id]
        kjobs.cancel(job.id)
    assert transport.throttled == 1


def test_a_service_that_is_not_there_is_unreachable_after_the_retries() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with KJobsClient(url, "key", retry=QUICK_RETRIES) as kjobs, pytest.raises(ServiceUnreachable, match=url):
        kjobs.health()
