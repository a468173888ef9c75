"""ASGI middleware: body size limit, security headers, and CORS only where configured.

Each reads the app's settings from ``app.state`` at request time, since settings are read
when the app starts, not when it is made.
"""

from typing import Any

from starlette.datastructures import Headers
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.problems import PROBLEM_JSON

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
# inline code, no framing.
UI_HEADERS = [
    (b"cache-control", b"no-cache"),
    (
        b"content-security-policy",
        b"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
        b"connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    ),
]
_DOCS = ("/docs", "/redoc")
_UI = "/ui"


def added_headers(path: str) -> list[tuple[bytes, bytes]]:
    """The headers added to every answer on ``path``."""
    if path.startswith(_DOCS):
        return SECURITY_HEADERS
    if path == _UI or path.startswith(f"{_UI}/"):
        return SECURITY_HEADERS + UI_HEADERS
    return SECURITY_HEADERS + API_ONLY_HEADERS


def _settings(scope: Scope) -> Any:
    return scope["app"].state.settings


class BodyLimit:
    """Refuses a request body over ``MAX_REQUEST_BYTES`` with a 413, before any route reads it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        settings = _settings(scope)
        uploading = scope["method"] == "POST" and scope["path"].rstrip("/") == "/v1/datasets"
        limit = settings.max_upload_bytes if uploading else settings.max_request_bytes
        declared = Headers(scope=scope).get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            await _too_large(scope, receive, send, limit)
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


class SecurityHeaders:
    """Adds headers that keep browsers from sniffing, framing or caching API answers."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = added_headers(scope["path"])

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        await self.app(scope, receive, send_with_headers)


class ConfiguredCORS:
    """CORS for the origins in ``CORS_ORIGINS``; with none (the default), no cross-origin access."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._inner: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self._inner is None and scope["type"] == "http":
            origins = _settings(scope).cors_origins
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
