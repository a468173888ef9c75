"""The plain metrics poll, answered on one Redis round trip without FastAPI's request machinery.

A client following a job asks ``GET /v1/jobs/{id}/metrics?after_epoch=N`` again and again,
nearly always in the same plain form. This route matches that form ahead of the documented
route (``api.routes.metrics.job_metrics``) and answers it with the same body, headers and
errors, but reads the key's record, counts the request in its rate window and reads the page
in one Redis command (``shared.poll_read``), and skips dependency solving and per-parameter
validation, which together cost the process more CPU than the rest of the request.

Every other form is left to the documented route, which validates it: a long poll (``wait``
above 0), a parameter that is not a plain integer in its range or that is given twice, no key
or one not shaped like ours, a malformed job id, authentication turned off, another method.
The choice is made before Redis is touched, so each request is counted once against its key.
"""

import re
from dataclasses import dataclass
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match, Route
from starlette.types import Scope

from api.dependencies import admitted_tenant
from api.routes.metrics import page_response
from shared.apikeys import LOOKUP_REPLIES, KeyStore, parse_token
from shared.errors import JobNotFound
from shared.feed import JobFeed
from shared.jobs import JOB_ID_PATTERN
from shared.poll_read import PollRead
from shared.settings import Settings
from shared.spec import MAX_EPOCHS

PATH = "/v1/jobs/{job_id}/metrics"
_JOB_ID = re.compile(JOB_ID_PATTERN)
_POLL = "kjobs.plain_poll"  # the scope entry that hands what ``matches`` parsed to the endpoint
# The documented route's bounds; ``wait`` only as 0, since a long poll is left to that route.
_BOUNDS = {"after_epoch": (0, MAX_EPOCHS), "limit": (1, MAX_EPOCHS), "wait": (0, 0)}


@dataclass(frozen=True)
class PlainPoll:
    """What a plain poll asks for: the job, the cursor, the page size and the key's parts."""

    job_id: str
    after_epoch: int
    limit: int | None
    key: tuple[str, str]


def plain_poll(scope: Scope, job_id: str) -> PlainPoll | None:
    """The poll ``scope`` asks for, when it is in the plain form; None for any other form."""
    if not _JOB_ID.fullmatch(job_id) or not scope["app"].state.settings.auth_enabled:
        return None
    values: dict[str, int] = {}
    for name, value in parse_qsl(scope["query_string"].decode("latin-1"), keep_blank_values=True):
        bounds = _BOUNDS.get(name)
        if bounds is None:
            continue  # the documented route ignores parameters it does not know, too
        # Only the canonical spelling of an integer: "007" or "+7" are the other route's call.
        if name in values or not (value.isascii() and value.isdigit()) or str(int(value)) != value:
            return None
        if not bounds[0] <= int(value) <= bounds[1]:
            return None
        values[name] = int(value)
    authorization = next((value for name, value in scope["headers"] if name == b"authorization"), None)
    if authorization is None:
        return None
    scheme, _, token = authorization.decode("latin-1").partition(" ")
    key = parse_token(token.strip()) if scheme.lower() == "bearer" else None
    if key is None:
        return None
    return PlainPoll(job_id, values.get("after_epoch", 0), values.get("limit"), key)


class PlainPollRoute(Route):
    """Matches a plain poll only (a full match or none: never a partial one, so a request with
    another method still gets the documented route's answer)."""

    def __init__(self) -> None:
        super().__init__(PATH, answer, methods=["GET"], include_in_schema=False)

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope["type"] != "http" or scope["method"] != "GET" or not scope["path"].endswith("/metrics"):
            return Match.NONE, {}
        match, child_scope = super().matches(scope)
        poll = plain_poll(scope, child_scope["path_params"]["job_id"]) if match is Match.FULL else None
        if poll is None:
            return Match.NONE, {}
        # The route in the scope names the template that the request histogram is labelled with.
        return Match.FULL, {**child_scope, _POLL: poll, "route": self}


async def answer(request: Request) -> Response:
    """The documented route's answer: 401 or 429 for the key, 404 for the job, then the page."""
    poll: PlainPoll = request.scope[_POLL]
    state = request.app.state
    settings: Settings = state.settings
    feed: JobFeed = state.feed
    keys: KeyStore = state.api_keys
    read: PollRead = state.poll_read
    limit = min(poll.limit or settings.metrics_page_limit, settings.metrics_page_limit)
    replies = await read(
        poll.key[0], settings.rate_limit_window_seconds, poll.job_id, poll.after_epoch, limit
    )
    tenant = admitted_tenant(keys.caller(poll.key, replies[:LOOKUP_REPLIES]), settings)
    page = feed.read_page(poll.job_id, replies[LOOKUP_REPLIES:])
    if page.tenant != tenant:
        raise JobNotFound(poll.job_id)
    return page_response(poll.job_id, poll.after_epoch, page)
