"""Per-epoch metrics of a job: a cursor read, a long poll, and a Server-Sent Events stream.

A client following a job polls ``GET /v1/jobs/{id}/metrics?after_epoch=N`` again and again, so
that route is kept cheap: the caller's key is checked, the request counted and the page read in
a single Redis round trip, and the stored records are spliced into the answer unparsed. For a
poll, FastAPI's own request handling (solving its dependencies, validating each parameter,
building the request and response) costs more CPU than all of that: the served app
(``api.main.create_app``) routes polls to ``POLL_ROUTE``, a plain Starlette route, ahead of the
FastAPI app, where ``get_job_metrics`` documents the route. Both are the same few lines over
``answer_poll``: the same query model, key check, read and answer, under the same middleware
and error handlers.
"""

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Annotated
from urllib.parse import parse_qsl

from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field, ValidationError
from starlette.datastructures import Headers
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from api.dependencies import (
    BearerDep,
    CallerDep,
    JobIdPath,
    ServicesDep,
    bearer_token,
    check_job_id,
    client_address,
    read_as_caller,
)
from api.problems import PROBLEM_RESPONSES
from api.schemas import MetricsPage
from api.services import Services, services_of
from shared.auth.streams import StreamSlot
from shared.errors import JobNotFound
from shared.jobs.feed import FeedPage, JobFeed, PageQuery
from shared.models.spec import MAX_EPOCHS

router = APIRouter(prefix="/v1/jobs", tags=["jobs"], responses=PROBLEM_RESPONSES)

PATH = "/v1/jobs/{job_id}/metrics"
JSON = "application/json"
KEEP_ALIVE_SECONDS = 15.0
MAX_WAIT_SECONDS = 60


class MetricsQuery(BaseModel):
    """What a poll asks for: the records after a cursor, how many, and how long to wait."""

    after_epoch: int = Field(0, ge=0, le=MAX_EPOCHS, description="Return only epochs after this one.")
    limit: int | None = Field(None, ge=1, le=MAX_EPOCHS, description="Most records to return (capped).")
    wait: int = Field(
        0, ge=0, le=MAX_WAIT_SECONDS, description="Long poll: wait up to this many seconds for a new record."
    )


async def answer_poll(
    services: Services, job_id: str, token: str | None, client: str, query: MetricsQuery
) -> bytes:
    """The caller's page of the job's records (after a wait, when it asks for one) as a
    ``MetricsPage`` in JSON: its key checked and the page read at once; 404 for a job it does
    not have."""
    check_job_id(job_id)
    cap = services.settings.metrics_page_limit
    cursor = PageQuery(job_id, query.after_epoch, min(query.limit or cap, cap))
    caller, found = await read_as_caller(services, token, client, cursor)
    page = found.page_of(job_id)
    if page.tenant != caller.tenant:
        raise JobNotFound(job_id)
    if query.wait and not page.records and not page.status.is_terminal():
        seconds = min(query.wait, services.settings.long_poll_max_seconds)
        async with services.stream_slots.slot(caller.key_id):
            page = await wait_for_news(services.stream_feed, cursor, seconds)
    return page_body(cursor, page).encode()


@router.get(
    "/{job_id}/metrics",
    operation_id="get_job_metrics",
    response_model=MetricsPage,
    summary="Epoch records after a cursor",
)
async def get_job_metrics(
    request: Request,
    job_id: JobIdPath,
    services: ServicesDep,
    token: BearerDep,
    query: Annotated[MetricsQuery, Query()],
) -> Response:
    """The epoch records after `after_epoch`, oldest first; poll again with `last_epoch`.

    With `wait`, an answer with nothing new waits until a record arrives or the job ends.
    """
    body = await answer_poll(services, job_id, token, client_address(request.scope), query)
    return Response(body, media_type=JSON)


class Poll:
    """``get_job_metrics`` as a plain ASGI app (see the module's docstring). What goes wrong is
    raised, for the served app's error handlers to answer as on any route."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            # Decoded as Starlette decodes a query (and a repeated parameter's last value taken,
            # as FastAPI takes it), without building its multi-dict.
            query_string = scope["query_string"].decode("latin-1")
            query = MetricsQuery.model_validate(dict(parse_qsl(query_string, keep_blank_values=True)))
        except ValidationError as exc:
            # As FastAPI reports an invalid query parameter, for the same problem document.
            errors = [{**error, "loc": ("query", *error["loc"])} for error in exc.errors(include_url=False)]
            raise RequestValidationError(errors) from None
        job_id = scope["path_params"]["job_id"]
        token = bearer_token(Headers(scope=scope).get("Authorization"))
        body = await answer_poll(services_of(scope), job_id, token, client_address(scope), query)
        # The answer ``Response(body, media_type=JSON)`` sends, without building one.
        headers = [(b"content-length", b"%d" % len(body)), (b"content-type", JSON.encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})


POLL_ROUTE = Route(PATH, Poll(), methods=["GET"])
"""The served app's route of the poll, ahead of the FastAPI app."""


def page_body(query: PageQuery, page: FeedPage) -> str:
    """A ``MetricsPage`` as JSON. The records are stored as JSON already: they are spliced in
    rather than parsed and encoded again."""
    last_epoch = query.after_epoch + len(page.records)
    return (
        f'{{"job_id":"{query.job_id}","status":"{page.status.value}","records":[{",".join(page.records)}],'
        f'"last_epoch":{last_epoch},"has_more":{"true" if page.total > last_epoch else "false"}}}'
    )


async def wait_for_news(feed: JobFeed, query: PageQuery, seconds: float) -> FeedPage:
    """Wait until the job has a record after the cursor, ends, or time is up: woken by the job's
    changes, and reading again at least once a ``KEEP_ALIVE_SECONDS`` (a change published while
    the process's pub/sub connection was down wakes nobody)."""
    deadline = asyncio.get_running_loop().time() + seconds
    async with feed.changes(query.job_id) as changed:
        page = await feed.page(query.job_id, query.after_epoch, query.limit)
        while not page.records and not page.status.is_terminal():
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                break
            await changed(min(remaining, KEEP_ALIVE_SECONDS))
            page = await feed.page(query.job_id, query.after_epoch, query.limit)
    return page


@router.get(
    "/{job_id}/events",
    operation_id="stream_job_events",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"text/event-stream": {}}, "description": "Epoch records and status changes"}
    },
    summary="Follow a job as Server-Sent Events",
)
async def stream_job_events(
    job_id: JobIdPath,
    request: Request,
    services: ServicesDep,
    caller: CallerDep,
    last_event_id: Annotated[
        str | None, Header(description="Resume after this epoch (the id of the last event received).")
    ] = None,
) -> StreamingResponse:
    """`epoch` events (id: the epoch) and `state` events, in order; ends after the final state.

    Reconnecting with `Last-Event-ID` resumes after that epoch. A comment line keeps the
    connection alive while nothing happens. An API key may hold `MAX_STREAMS_PER_KEY` streams
    and long polls open at once; past that, a 429.
    """
    check_job_id(job_id)
    after = min(int(last_event_id), MAX_EPOCHS) if last_event_id and last_event_id.isdigit() else 0
    if (await services.feed.page(job_id, after, 1)).tenant != caller.tenant:  # 404 before it starts
        raise JobNotFound(job_id)
    query = PageQuery(job_id, after, services.settings.metrics_page_limit)
    # Taken here, so that a key past its streams gets its 429 before a 200 starts.
    slot = await services.stream_slots.take(caller.key_id)
    stream = events(services.stream_feed, query, request, slot)
    headers = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    return StreamingResponse(stream, media_type="text/event-stream", headers=headers)


async def events(
    feed: JobFeed,
    query: PageQuery,
    request: Request,
    slot: StreamSlot,
) -> AsyncIterator[str]:
    """The event stream of one client: woken by the job's changes, reading again at least once a
    ``KEEP_ALIVE_SECONDS`` (when it also renews its slot); the slot is given back when it ends."""
    job_id, after, status = query.job_id, query.after_epoch, None
    try:
        async with feed.changes(job_id) as changed:
            while True:
                page = await feed.page(job_id, after, query.limit)
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
                    await slot.renew()
                    yield ": keep-alive\n\n"
    finally:
        await slot.release()
