"""The plain metrics poll, answered ahead of the app's layers on one Redis round trip.

A client following a job asks ``GET /v1/jobs/{id}/metrics?after_epoch=N`` again and again,
nearly always in the same plain form: a bearer key, ``after_epoch`` and ``limit`` as plain
integers, no long poll. The app (``api.main.Api``) offers every request to ``PlainPolls``
first, which answers that form itself whenever the answer is a page: it reads the key's
record, counts the request in its rate window and reads the page in one Redis command
(``shared.jobs.poll``), writes the documented route's body (``page_body``) with the headers
the app's middleware adds to every answer (``added_headers``), and times the request into the
same histogram under the same route template. Routing, dependency solving, per-parameter
validation, the request and response objects and the middleware chain cost the process more
CPU than the rest of such a request together.

Everything else goes through the app untouched: every other form of the request (a long poll,
a value out of range or spelled otherwise, a parameter given twice, no key or one not shaped
like ours, a malformed job id, authentication turned off, a request body, a CORS request when
CORS is configured, another method or path). That choice is made before Redis is touched. A
plain poll whose answer is not a page (a key refused, the rate exceeded, no such job, Redis
unreachable) is handed to the app with what went wrong, and ``PlainPollRoute`` raises it
there, so the app's own handlers and middlewares write that answer as they write any other,
and the request is still counted once against its key.
"""

import re
import time
from dataclasses import dataclass

from prometheus_client import Histogram
from starlette.applications import Starlette
from starlette.datastructures import State
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match, Route
from starlette.types import Scope, Send

from api.dependencies import admitted_tenant
from api.middleware import added_headers
from api.routes.metrics import page_body
from shared.auth.keys import LOOKUP_REPLIES, KeyStore, parse_token
from shared.errors import JobNotFound
from shared.jobs.feed import FeedPage, JobFeed
from shared.jobs.poll import PollRead
from shared.models.jobs import JOB_ID_PATTERN
from shared.models.spec import MAX_EPOCHS
from shared.settings import Settings

PATH = "/v1/jobs/{job_id}/metrics"
_PATH = re.compile(r"/v1/jobs/([^/]+)/metrics")
_JOB_ID = re.compile(JOB_ID_PATTERN)
HANDED_ON = "kjobs.plain_poll"  # the scope entry that hands the front's error to the route
# The documented route's bounds; ``wait`` only as 0, since a long poll is left to that route.
_BOUNDS = {"after_epoch": (0, MAX_EPOCHS), "limit": (1, MAX_EPOCHS), "wait": (0, 0)}
# Request headers that send the request through the app: a body (the body limit reads it) and,
# where CORS is configured, an origin (the CORS middleware answers it).
_BODY_HEADERS = (b"content-length", b"transfer-encoding")


@dataclass(frozen=True)
class PlainPoll:
    """What a plain poll asks for: the job, the cursor, the page size and the key's parts."""

    job_id: str
    after_epoch: int
    limit: int | None
    key: tuple[str, str]


def plain_poll(scope: Scope, job_id: str, settings: Settings) -> PlainPoll | None:
    """The poll ``scope`` asks for, when it is in the plain form; None for any other form."""
    if not _JOB_ID.fullmatch(job_id) or not settings.auth_enabled:
        return None
    query: bytes = scope["query_string"]
    if b"%" in query or b"+" in query:
        return None  # something escaped: the documented route decodes and validates it
    values: dict[str, int] = {}
    for name, _, value in (pair.partition("=") for pair in query.decode("latin-1").split("&") if pair):
        bounds = _BOUNDS.get(name)
        if bounds is None:
            continue  # the documented route ignores parameters it does not know, too
        # Only the canonical spelling of an integer: "007" or "+7" are the other route's call.
        if name in values or not (value.isascii() and value.isdigit()) or str(int(value)) != value:
            return None
        if not bounds[0] <= int(value) <= bounds[1]:
            return None
        values[name] = int(value)
    authorization = None
    for name, value in scope["headers"]:
        if name == b"authorization":
            authorization = authorization or value  # the first, as the documented route reads it
        elif (name in _BODY_HEADERS and value != b"0") or (name == b"origin" and settings.cors_origins):
            return None
    if authorization is None:
        return None
    scheme, _, token = authorization.decode("latin-1").partition(" ")
    key = parse_token(token.strip()) if scheme.lower() == "bearer" else None
    if key is None:
        return None
    return PlainPoll(job_id, values.get("after_epoch", 0), values.get("limit"), key)


def requested_poll(scope: Scope, settings: Settings) -> PlainPoll | None:
    """The plain poll an HTTP request asks for; None for any other request."""
    if scope["method"] != "GET" or scope.get("root_path"):
        return None
    path = _PATH.fullmatch(scope["path"])
    return None if path is None else plain_poll(scope, path[1], settings)


async def read_page(state: State, poll: PlainPoll) -> FeedPage:
    """The page of a plain poll; the documented route's errors for a refused key, a request past
    the rate or a job this tenant does not have."""
    settings: Settings = state.settings
    read: PollRead = state.poll_read
    limit = min(poll.limit or settings.metrics_page_limit, settings.metrics_page_limit)
    replies = await read(
        poll.key[0], settings.rate_limit_window_seconds, poll.job_id, poll.after_epoch, limit
    )
    tenant = admitted_tenant(KeyStore.caller(poll.key, replies[:LOOKUP_REPLIES]), settings)
    page = JobFeed.read_page(poll.job_id, replies[LOOKUP_REPLIES:])
    if page.tenant != tenant:
        raise JobNotFound(poll.job_id)
    return page


class PlainPolls:
    """Answers plain polls whose answer is a page, before the app's layers see them."""

    def __init__(self) -> None:
        self._timed: Histogram | None = None  # the histogram's series for a plain poll's 200

    async def answered(self, app: Starlette, scope: Scope, send: Send) -> bool:
        """True when the request was a plain poll and is answered; False leaves it to the app
        (with the error, where a plain poll's answer is not a page, for the route to raise)."""
        if scope["type"] != "http":
            return False
        state = app.state
        poll = requested_poll(scope, state.settings)
        if poll is None:
            return False
        started = time.perf_counter()
        try:
            page = await read_page(state, poll)
        except Exception as error:  # every error is the app's to answer, as on any other route
            scope[HANDED_ON] = error
            return False
        body = page_body(poll.job_id, poll.after_epoch, page).encode()
        headers = [
            (b"content-length", str(len(body)).encode()),
            (b"content-type", b"application/json"),
            *added_headers(scope["path"]),
        ]
        try:
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": body})
        finally:
            if self._timed is None:
                histogram: Histogram = state.request_seconds
                self._timed = histogram.labels(PATH, "GET", "200")
            self._timed.observe(time.perf_counter() - started)
        return True


class PlainPollRoute(Route):
    """Matches only a plain poll the front handed on, ahead of the documented route, so that
    the front's error is raised (and answered) inside the app."""

    def __init__(self) -> None:
        super().__init__(PATH, answer, methods=["GET"], include_in_schema=False)

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if HANDED_ON not in scope:
            return Match.NONE, {}
        match, child_scope = super().matches(scope)
        # The route in the scope names the template that the request histogram is labelled with.
        return match, {**child_scope, "route": self}


async def answer(request: Request) -> Response:
    """Raises what went wrong in the front, for the app's exception handlers to answer."""
    raise request.scope[HANDED_ON]
