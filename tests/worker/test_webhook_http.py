"""The webhook client against real servers on loopback: an attempt is over by its deadline however
slowly the receiver answers or reads, and only the start of an answer's body is read."""

import socket
import time

from tests.helpers import free_port, wait_for
from tests.receivers import answer_ok, endless, receiving, trickling, trickling_head
from worker.webhook_http import Reply, WebhookHttp

DEADLINE = 1.0
SLACK = 0.5
BODY = b'{"event": "state"}'


def post(url: str, body: bytes = BODY) -> tuple[float, Reply]:
    """POST with a deadline of ``DEADLINE``: how long it took, and what came of it."""
    http = WebhookHttp()
    started = time.monotonic()
    try:
        reply = http.post(url, {"Content-Type": "application/json"}, body, "127.0.0.1", started + DEADLINE)
    finally:
        http.close()
    return time.monotonic() - started, reply


def test_a_quick_answer_is_its_status() -> None:
    with receiving(answer_ok) as receiver:
        took, reply = post(receiver.url)
    assert (reply.status, reply.error, reply.ok) == (200, None, True)
    assert took < DEADLINE
    assert [visit.body for visit in receiver.seen()] == [BODY]


def test_a_body_trickled_after_the_status_ends_the_attempt_at_its_deadline() -> None:
    # A byte every 0.2 s: a timeout per read would never fire.
    with receiving(trickling(0.2)) as receiver:
        took, reply = post(receiver.url)
        (visit,) = wait_for(lambda: [v for v in receiver.seen() if v.hung_up], timeout=5, what="the hang-up")
    assert (reply.status, reply.error, reply.ok) == (200, "ReadTimeout: the attempt's deadline passed", False)
    assert DEADLINE <= took < DEADLINE + SLACK
    assert visit.hung_up is not None
    assert visit.hung_up - visit.arrived < DEADLINE + SLACK
    assert 2 <= visit.sent < 10


def test_a_trickled_status_line_ends_the_attempt_at_its_deadline() -> None:
    with receiving(trickling_head(0.2)) as receiver:
        took, reply = post(receiver.url)
    assert (reply.status, reply.error) == (None, "ReadTimeout: the attempt's deadline passed")
    assert DEADLINE <= took < DEADLINE + SLACK


def test_only_the_start_of_a_huge_body_is_read() -> None:
    with receiving(endless(length=256 * 2**20)) as receiver:
        took, reply = post(receiver.url)
        wait_for(lambda: receiver.seen() and receiver.active == 0, timeout=10, what="the answer to end")
    assert (reply.status, reply.ok) == (200, True)
    assert took < DEADLINE
    (visit,) = receiver.seen()
    # What the receiver managed to write is what the kernel's buffers took: far from the 256 MiB.
    assert visit.sent < 32 * 2**20


def test_a_receiver_that_never_reads_ends_the_attempt_at_its_deadline() -> None:
    # The kernel accepts the connection; nothing ever reads it, so a large body fills the buffers.
    with socket.create_server(("127.0.0.1", 0)) as silent:
        took, reply = post(f"http://127.0.0.1:{silent.getsockname()[1]}/hook", body=b"x" * 64 * 2**20)
    assert (reply.status, reply.error) == (None, "WriteTimeout: the attempt's deadline passed")
    assert DEADLINE <= took < DEADLINE + SLACK


def test_a_refused_connection_is_a_failed_reply() -> None:
    took, reply = post(f"http://127.0.0.1:{free_port()}/hook")
    assert reply.status is None
    assert (reply.error or "").startswith("ConnectError")
    assert took < DEADLINE
