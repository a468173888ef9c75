"""Per-epoch metrics of a job: a cursor read, a long poll, and a Server-Sent Events stream."""

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.responses import StreamingResponse

from api.dependencies import FeedDep, JobIdPath, SettingsDep, TenantDep, check_job_id
from api.problems import PROBLEM_RESPONSES
from api.schemas import MetricsPage
from shared.errors import JobNotFound
from shared.jobs.feed import FeedPage, JobFeed
from shared.models.spec import MAX_EPOCHS

router = APIRouter(prefix="/v1/jobs", tags=["jobs"], responses=PROBLEM_RESPONSES)

KEEP_ALIVE_SECONDS = 15.0
MAX_WAIT_SECONDS = 60


async def owned_page(feed: JobFeed, job_id: str, tenant: str, after_epoch: int, limit: int) -> FeedPage:
    """The job's page after ``after_epoch``; 404 for an id of another tenant."""
    check_job_id(job_id)
    page = await feed.page(job_id, after_epoch, limit)
    if page.tenant != tenant:
        raise JobNotFound(job_id)
    return page


@router.get("/{job_id}/metrics", response_model=MetricsPage, summary="Epoch records after a cursor")
async def job_metrics(
    job_id: JobIdPath,
    feed: FeedDep,
    tenant: TenantDep,
    settings: SettingsDep,
    after_epoch: Annotated[
        int, Query(ge=0, le=MAX_EPOCHS, description="Return only epochs after this one.")
    ] = 0,
    limit: Annotated[
        int | None, Query(ge=1, le=MAX_EPOCHS, description="Most records to return (capped).")
    ] = None,
    wait: Annotated[
        int,
        Query(
            ge=0, le=MAX_WAIT_SECONDS, description="Long poll: wait up to this many seconds for a new record."
        ),
    ] = 0,
) -> Response:
    """The epoch records after `after_epoch`, oldest first; poll again with `last_epoch`.

    With `wait`, an answer with nothing new waits until a record arrives or the job ends.
    """
    page_limit = min(limit or settings.metrics_page_limit, settings.metrics_page_limit)
    page = await owned_page(feed, job_id, tenant, after_epoch, page_limit)
    if wait and not page.records and not page.status.is_terminal():
        page = await wait_for_news(
            feed, job_id, after_epoch, page_limit, min(wait, settings.long_poll_max_seconds)
        )
    return page_response(job_id, after_epoch, page)


def page_body(job_id: str, after_epoch: int, page: FeedPage) -> str:
    """A ``MetricsPage`` as JSON. The records are stored as JSON already: they are spliced in
    rather than parsed and encoded again."""
    last_epoch = after_epoch + len(page.records)
    return (
        f'{{"job_id":"{job_id}","status":"{page.status.value}","records":[{",".join(page.records)}],'
        f'"last_epoch":{last_epoch},"has_more":{"true" if page.total > last_epoch else "false"}}}'
    )


def page_response(job_id: str, after_epoch: int, page: FeedPage) -> Response:
    """A ``MetricsPage`` answer."""
    return Response(page_body(job_id, after_epoch, page), media_type="application/json")


async def wait_for_news(feed: JobFeed, job_id: str, after_epoch: int, limit: int, seconds: float) -> FeedPage:
    """Block (without polling) until the job has a record after ``after_epoch``, ends, or time is up."""
    deadline = asyncio.get_running_loop().time() + seconds
    async with feed.changes(job_id) as changed:
        page = await feed.page(job_id, after_epoch, limit)
        while not page.records and not page.status.is_terminal():
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                break
            if await changed(remaining):
                page = await feed.page(job_id, after_epoch, limit)
    return page


@router.get(
    "/{job_id}/events",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"text/event-stream": {}}, "description": "Epoch records and status changes"}
    },
    summary="Follow a job as Server-Sent Events",
)
async def job_events(
    job_id: JobIdPath,
    request: Request,
    feed: FeedDep,
    tenant: TenantDep,
    settings: SettingsDep,
    last_event_id: Annotated[
        str | None, Header(description="Resume after this epoch (the id of the last event received).")
    ] = None,
) -> StreamingResponse:
    """`epoch` events (id: the epoch) and `state` events, in order; ends after the final state.

    Reconnecting with `Last-Event-ID` resumes after that epoch. A comment line keeps the
    connection alive while nothing happens.
    """
    after = int(last_event_id) if last_event_id and last_event_id.isdigit() else 0
    await owned_page(feed, job_id, tenant, after, 1)  # 404 before the stream starts
    stream = events(feed, job_id, min(after, MAX_EPOCHS), settings.metrics_page_limit, request)
    headers = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    return StreamingResponse(stream, media_type="text/event-stream", headers=headers)


async def events(feed: JobFeed, job_id: str, after: int, limit: int, request: Request) -> AsyncIterator[str]:
    """The event stream of one client: woken by the job's changes, never polling Redis idle."""
    status = None
    async with feed.changes(job_id) as changed:
        while True:
            page = await feed.page(job_id, after, limit)
            for record in page.records:
                after += 1
                yield f"id: {after}\nevent: epoch\ndata: {record}\n\n"
            if page.status != status:
                status = page.status
                state = json.dumps({"status": status.value, "last_epoch": after})
                yield f"id: {after}\nevent: state\ndata: {state}\n\n"
            if status.is_terminal() and after >= page.total:
                return
            if after < page.total:
                continue
            if not await changed(KEEP_ALIVE_SECONDS):
                if await request.is_disconnected():
                    return
                yield ": keep-alive\n\n"
