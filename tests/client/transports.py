"""Transports that misbehave on purpose, in front of the real API: the network's faults, not the
service's."""

from collections.abc import Callable

import httpx

Matcher = Callable[[httpx.Request], bool]


def posts_to(path: str) -> Matcher:
    """Matches the POSTs to ``path``."""
    return lambda request: request.method == "POST" and request.url.path == path


class DroppingTransport(httpx.BaseTransport):
    """Lets the first matching request reach the server, then loses its answer."""

    def __init__(self, matches: Matcher) -> None:
        self.inner = httpx.HTTPTransport()
        self.matches = matches
        self.seen: list[httpx.Request] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        if not self.matches(request):
            return response
        self.seen.append(request)
        if len(self.seen) > 1:
            return response
        response.read()  # the server has acted on it; only the answer is lost
        response.close()
        raise httpx.ReadError("connection reset by peer", request=request)

    def close(self) -> None:
        self.inner.close()


class AsyncDroppingTransport(httpx.AsyncBaseTransport):
    """``DroppingTransport`` for the asyncio client."""

    def __init__(self, matches: Matcher) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.matches = matches
        self.seen: list[httpx.Request] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        if not self.matches(request):
            return response
        self.seen.append(request)
        if len(self.seen) > 1:
            return response
        await response.aread()
        await response.aclose()
        raise httpx.ReadError("connection reset by peer", request=request)

    async def aclose(self) -> None:
        await self.inner.aclose()


class ThrottlingTransport(httpx.BaseTransport):
    """Answers the first matching request with a 429 and ``Retry-After`` before it reaches the server."""

    def __init__(self, matches: Matcher, retry_after: str = "0") -> None:
        self.inner = httpx.HTTPTransport()
        self.matches = matches
        self.retry_after = retry_after
        self.throttled = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if self.matches(request) and not self.throttled:
            self.throttled += 1
            headers = {"Retry-After": self.retry_after, "content-type": "application/problem+json"}
            body = b'{"title": "Too many requests", "status": 429, "detail": "slow down"}'
            return httpx.Response(429, headers=headers, content=body, request=request)
        return self.inner.handle_request(request)

    def close(self) -> None:
        self.inner.close()
