"""ASGI middleware: every answer's headers and timing, CORS only where configured, and the body
size limit.

Each reads the app's services (``api.services``) from the request's scope at request time,
since settings are read when the app starts, not when it is made.
"""

import time

from starlette.middleware.cors import CORSMiddleware
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.problems import PROBLEM_JSON
from api.services import services_of

SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-resource-policy", b"same-origin"),
]
API_ONLY_HEADERS = [
    (b"cache-control", b"no-store"),
    (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'"),
]
# The web page runs only its own files: scripts, styles and API calls from this origin, no
# inline code, no framing. Images may be blobs: the page fetches the API's plots with its key
# (an <img> cannot send one) and shows what it fetched.
UI_HEADERS = [
    (b"cache-control", b"no-cache"),
    (
        b"content-security-policy",
        b"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob:; "
        b"connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    ),
]
_DOCS = ("/docs", "/redoc")
_UI = ("/ui/", "/ui")
_UI_ANSWER = SECURITY_HEADERS + UI_HEADERS
_API_ANSWER = SECURITY_HEADERS + API_ONLY_HEADERS


def added_headers(path: str) -> list[tuple[bytes, bytes]]:
    """The headers added to every answer on ``path``."""
    if path.startswith(_DOCS):
        return SECURITY_HEADERS
    if path.startswith(_UI[0]) or path == _UI[1]:
        return _UI_ANSWER
    return _API_ANSWER


class BodyLimit:
    """Refuses a request body over ``MAX_REQUEST_BYTES`` (``MAX_UPLOAD_BYTES`` for an upload) with
    a 413, before any route reads it.

    A declared length is checked against the limit, and the server reads no more than it
    declares. A chunked body declares none: it is read here, up to the limit, then handed on. A
    request without a body (no length, not chunked) passes through untouched.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared, chunked = None, False
        for name, value in scope["headers"]:
            if name == b"content-length":
                declared = value
            elif name == b"transfer-encoding":
                chunked = True
        if declared is None and not chunked:
            await self.app(scope, receive, send)
            return
        settings = services_of(scope).settings
        uploading = scope["method"] == "POST" and scope["path"].rstrip("/") == "/v1/datasets"
        limit = settings.max_upload_bytes if uploading else settings.max_request_bytes
        if declared is not None and not chunked:
            if declared.isdigit() and int(declared) > limit:
                await _too_large(scope, receive, send, limit)
            else:
                await self.app(scope, receive, send)
            return
        messages, size = [], 0
        while True:  # read the body now (at most the limit), then hand it on
            message = await receive()
            messages.append(message)
            size += len(message.get("body", b""))
            if size > limit:
                await _too_large(scope, receive, send, limit)
                return
            if message["type"] != "http.request" or not message.get("more_body"):
                break
        await self.app(scope, _replay(messages, receive), send)


def _replay(messages: list[Message], receive: Receive) -> Receive:
    async def replayed() -> Message:
        return messages.pop(0) if messages else await receive()

    return replayed


async def _too_large(scope: Scope, receive: Receive, send: Send, limit: int) -> None:
    body = {
        "type": "urn:keras-jobs:problem:too-large",
        "title": "Request body too large",
        "status": 413,
        "detail": f"the request body is over the limit of {limit} bytes",
        "instance": scope["path"],
    }
    await JSONResponse(body, status_code=413, media_type=PROBLEM_JSON)(scope, receive, send)


class ConfiguredCORS:
    """CORS for the origins in ``CORS_ORIGINS``; with none (the default), no cross-origin access."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._inner: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self._inner is None and scope["type"] == "http":
            origins = services_of(scope).settings.cors_origins
            self._inner = (
                self.app
                if not origins
                else CORSMiddleware(
                    self.app,
                    allow_origins=origins,
                    allow_methods=["GET", "POST"],
                    allow_headers=["Authorization", "Content-Type", "Idempotency-Key"],
                )
            )
        await (self._inner or self.app)(scope, receive, send)


class Answers:
    """Every HTTP answer, in one pass: given the headers of its path (``added_headers``), and
    timed into the request histogram under its route's template.

    Labels use the matched route's template (``/v1/jobs/{job_id}``), never the raw path, so the
    number of series stays bounded; an unmatched path counts as ``unmatched``. A streamed
    answer (the event stream) is timed to its end.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started, status, extra = time.perf_counter(), 500, added_headers(scope["path"])

        async def answering(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        try:
            await self.app(scope, receive, answering)
        finally:
            template = getattr(scope.get("route"), "path", None) or "unmatched"
            timer = services_of(scope).request_seconds
            timer.observe(template, scope["method"], status, time.perf_counter() - started)
