"""HTTP for webhook attempts: one wall-clock deadline over a whole attempt, and a bounded read.

The timeouts of httpx and httpcore bound each network operation, not a request: a receiver that
sends a byte a little more often than the timeout holds a request open for as long as it likes.
Here every connect, write and read of an attempt gets at most the time left before the
attempt's deadline, and none once it has passed. The answer is read in pieces of
``READ_BYTES``, and of its body only the first ``ANSWER_PREFIX_BYTES`` (a piece more at most):
whatever a receiver sends past them never reaches the worker.

A request goes to the URL it is given (its host already the address the SSRF policy checked),
never through a proxy (httpcore reads no environment), and a redirect is not followed. Every
attempt opens a connection of its own: a pool keyed by address alone could send one host's
request on a TLS session that was checked for another name at the same address.
"""

import math
import socket
import ssl
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import httpcore
import httpx

ANSWER_PREFIX_BYTES = 4096
"""How much of an answer's body an attempt reads; the rest is left unread, the connection closed."""
READ_BYTES = 4096
"""The most one read takes from the connection, the answer's head included."""
HTTP_ERRORS = (
    httpcore.TimeoutException,
    httpcore.NetworkError,
    httpcore.ProtocolError,
    httpcore.UnsupportedProtocol,
)
"""What a failed exchange raises: each is a failed attempt, never a deliverer's error."""


class Deadline:
    """When the attempt in hand must be over, on ``time.monotonic()``; never between attempts."""

    def __init__(self) -> None:
        self.at = math.inf

    def left(self, timeout: float | None, expired: type[Exception]) -> float:
        """``timeout`` (None: no limit of its own) cut to the time left; ``expired`` when none is."""
        left = self.at - time.monotonic()
        if left <= 0:
            raise expired("the attempt's deadline passed")
        return left if timeout is None else min(timeout, left)


class DeadlineStream(httpcore.NetworkStream):
    """A connection whose every operation ends by the deadline."""

    def __init__(self, inner: httpcore.NetworkStream, deadline: Deadline) -> None:
        self.inner, self.deadline = inner, deadline

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        left = self.deadline.left(timeout, httpcore.ReadTimeout)
        return self.inner.read(min(max_bytes, READ_BYTES), left)

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        # Not the inner stream's write, which gives each partial send the whole timeout: a receiver
        # taking a few bytes at a time would stretch the attempt. Each send gets the time left.
        sock: socket.socket = self.inner.get_extra_info("socket")
        pending = memoryview(buffer)
        try:
            while pending:
                sock.settimeout(self.deadline.left(timeout, httpcore.WriteTimeout))
                pending = pending[sock.send(pending) :]
        except TimeoutError as exc:
            raise httpcore.WriteTimeout(str(exc)) from exc
        except OSError as exc:
            raise httpcore.WriteError(str(exc)) from exc

    def close(self) -> None:
        self.inner.close()

    def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.NetworkStream:
        left = self.deadline.left(timeout, httpcore.ConnectTimeout)
        return DeadlineStream(self.inner.start_tls(ssl_context, server_hostname, left), self.deadline)

    def get_extra_info(self, info: str) -> Any:
        return self.inner.get_extra_info(info)


class DeadlineBackend(httpcore.NetworkBackend):
    """httpcore's own blocking sockets, each bound by the attempt's deadline."""

    def __init__(self, deadline: Deadline) -> None:
        self.inner, self.deadline = httpcore.SyncBackend(), deadline

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        left = self.deadline.left(timeout, httpcore.ConnectTimeout)
        stream = self.inner.connect_tcp(host, port, left, local_address, socket_options)
        return DeadlineStream(stream, self.deadline)

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.NetworkStream:
        raise httpcore.UnsupportedProtocol("webhooks go over TCP only")

    def sleep(self, seconds: float) -> None:
        self.inner.sleep(seconds)


@dataclass(frozen=True)
class Reply:
    """What came of one POST: the answer's status, if one came, and what failed, if anything did."""

    status: int | None
    error: str | None = None

    @property
    def ok(self) -> bool:
        """A 2xx whose body's first bytes (or its end) came by the deadline."""
        return self.error is None and self.status is not None and 200 <= self.status < 300


class WebhookHttp:
    """One sender's HTTP client: one attempt at a time, each over by its deadline."""

    def __init__(self) -> None:
        self.deadline = Deadline()
        self._pool = httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context(trust_env=False),
            max_keepalive_connections=0,  # a connection per attempt (see the module's docstring)
            network_backend=DeadlineBackend(self.deadline),
        )

    def post(
        self, url: str, headers: dict[str, str], body: bytes, server_name: str, deadline: float
    ) -> Reply:
        """POST ``body`` to ``url`` (TLS checked for ``server_name``), done by ``deadline``
        (``time.monotonic()``): the answer's status, with its body's first bytes read."""
        self.deadline.at = deadline
        status: int | None = None
        try:
            with self._pool.stream(
                "POST",
                url,
                headers=list(headers.items()),
                content=body,
                extensions={"sni_hostname": server_name},
            ) as answer:
                status = answer.status
                read_prefix(answer.iter_stream(), ANSWER_PREFIX_BYTES)
        except httpcore.TimeoutException as exc:  # the deadline is the only timeout there is
            return Reply(status, f"{type(exc).__name__}: the attempt's deadline passed")
        except HTTP_ERRORS as exc:
            return Reply(status, f"{type(exc).__name__}: {exc}")
        finally:
            self.deadline.at = math.inf
        return Reply(status)

    def close(self) -> None:
        """Close the connections (none is kept between attempts)."""
        self._pool.close()


def read_prefix(chunks: Iterator[bytes], limit: int) -> int:
    """Read ``chunks`` until ``limit`` bytes or their end; how many bytes were read."""
    read = 0
    for chunk in chunks:
        read += len(chunk)
        if read >= limit:
            break
    return read
