"""Webhook receivers for the tests: real HTTP servers on loopback, each in a thread of its own,
that answer as slowly or as lengthily as a test needs and record what they saw.

Each request is answered by an ``Answer``: a function of the request handler and the ``Visit``
being recorded. A receiver's ``close`` wakes every answer still waiting, so no test leaves a
server thread behind.
"""

import json
import select
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Visit:
    """One request as the receiver saw it, and how its answer went."""

    headers: dict[str, str]
    body: bytes
    arrived: float = field(default_factory=time.monotonic)
    hung_up: float | None = None
    """When the client closed the connection before the answer was over (``time.monotonic()``)."""
    sent: int = 0
    """Bytes of the answer's body written to the connection."""

    @property
    def payload(self) -> dict[str, Any]:
        decoded: dict[str, Any] = json.loads(self.body)
        return decoded

    @property
    def attempt(self) -> int:
        return int(self.headers["X-KJobs-Delivery-Attempt"])


Answer = Callable[["Handler", Visit], None]


class Handler(BaseHTTPRequestHandler):
    """Reads a POST, records its visit, and leaves the answer to the receiver's ``Answer``."""

    server: "ReceiverServer"

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        visit = Visit(dict(self.headers.items()), body)
        receiver = self.server.receiver
        receiver.enter(visit)
        try:
            receiver.answer(self, visit)
        except OSError:  # the client hung up while the answer was written
            visit.hung_up = visit.hung_up or time.monotonic()
        finally:
            receiver.leave()

    def head(self, status: int, length: int) -> None:
        """Send the status line and headers of an answer whose body is ``length`` bytes."""
        self.send_response(status)
        self.send_header("Content-Length", str(length))
        self.end_headers()

    def hung_up(self, wait: float) -> bool:
        """Whether the client closes the connection within ``wait`` seconds (or before the
        receiver closes)."""
        until = time.monotonic() + wait
        while (left := until - time.monotonic()) > 0 and not self.server.receiver.closing.is_set():
            readable, _, _ = select.select([self.connection], [], [], min(left, 0.1))
            if readable:
                try:
                    return bool(self.connection.recv(1024) == b"")
                except OSError:
                    return True
        return False

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass


class ReceiverServer(ThreadingHTTPServer):
    daemon_threads = True
    receiver: "Receiver"


@dataclass
class Receiver:
    """The state a test reads: every visit, and how many requests were in hand at once."""

    answer: Answer
    url: str = ""
    visits: list[Visit] = field(default_factory=list)
    active: int = 0
    most_active: int = 0
    closing: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def enter(self, visit: Visit) -> None:
        with self.lock:
            self.visits.append(visit)
            self.active += 1
            self.most_active = max(self.most_active, self.active)

    def leave(self) -> None:
        with self.lock:
            self.active -= 1

    def seen(self) -> list[Visit]:
        with self.lock:
            return list(self.visits)

    def of_job(self, job_id: str) -> list[Visit]:
        return [visit for visit in self.seen() if visit.payload["job_id"] == job_id]


@contextmanager
def receiving(answer: Answer) -> Iterator[Receiver]:
    """A receiver that answers every request with ``answer``, until the block ends."""
    server = ReceiverServer(("127.0.0.1", 0), Handler)
    receiver = Receiver(answer, f"http://127.0.0.1:{server.server_address[1]}/hooks/kjobs")
    server.receiver = receiver
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        receiver.closing.set()
        server.shutdown()
        server.server_close()


def answer_ok(handler: Handler, visit: Visit) -> None:
    """200 and an empty body."""
    handler.head(200, 0)


def trickling(interval: float, after_attempts: int = 0) -> Answer:
    """An answer that sends 200 and its headers, then a byte of its body every ``interval``
    seconds until the client hangs up; attempts after ``after_attempts`` get ``answer_ok``."""

    def answer(handler: Handler, visit: Visit) -> None:
        if after_attempts and visit.attempt > after_attempts:
            answer_ok(handler, visit)
            return
        handler.head(200, 1000)
        while visit.sent < 1000 and not handler.server.receiver.closing.is_set():
            handler.wfile.write(b"x")
            visit.sent += 1
            if handler.hung_up(interval):
                visit.hung_up = time.monotonic()
                return

    return answer


def trickling_head(interval: float) -> Answer:
    """An answer whose status line and headers come a byte every ``interval`` seconds."""

    def answer(handler: Handler, visit: Visit) -> None:
        for byte in b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n":
            handler.wfile.write(bytes([byte]))
            if handler.hung_up(interval):
                visit.hung_up = time.monotonic()
                return

    return answer


def endless(length: int = 256 * 2**20, chunk: int = 2**16) -> Answer:
    """200 with a body of ``length`` bytes, written as fast as the client takes them."""

    def answer(handler: Handler, visit: Visit) -> None:
        handler.head(200, length)
        piece = b"x" * chunk
        while visit.sent < length:
            handler.wfile.write(piece)
            visit.sent += chunk

    return answer


def sleeping(seconds: float, first_attempts_only: bool = True) -> Answer:
    """An answer that waits ``seconds`` before its 200, unless the client hangs up first; with
    ``first_attempts_only``, retries are answered at once."""

    def answer(handler: Handler, visit: Visit) -> None:
        if (not first_attempts_only or visit.attempt == 1) and handler.hung_up(seconds):
            visit.hung_up = time.monotonic()
            return
        answer_ok(handler, visit)

    return answer
