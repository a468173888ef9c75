"""Webhooks end to end: a real worker trains, and a real receiver on loopback gets signed events."""

import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from shared.settings import Settings
from shared.webhooks.signing import verify
from tests.conftest import new_api_key
from tests.helpers import tiny_spec, wait_for
from tests.receivers import answer_ok, endless, receiving, sleeping, trickling

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("worker")]


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes

    @property
    def payload(self) -> dict[str, Any]:
        decoded: dict[str, Any] = json.loads(self.body)
        return decoded


@dataclass
class Receiver:
    """An HTTP server on loopback that records every POST; it can refuse first attempts."""

    url: str
    fail_first_attempts: bool = False
    requests: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, received: Received) -> int:
        with self.lock:
            self.requests.append(received)
        first = received.headers["X-KJobs-Delivery-Attempt"] == "1"
        return 503 if self.fail_first_attempts and first else 200

    def of_job(self, job_id: str) -> list[Received]:
        with self.lock:
            return [r for r in self.requests if r.payload["job_id"] == job_id]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    box: list[Receiver] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            status = box[0].record(Received(dict(self.headers.items()), body))
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:  # quiet
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    box.append(Receiver(f"http://127.0.0.1:{server.server_address[1]}/hooks/kjobs"))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield box[0]
    server.shutdown()
    server.server_close()


def run_job(client: httpx.Client, notify: dict[str, Any]) -> dict[str, Any]:
    response = client.post("/v1/jobs", json=tiny_spec(notify=notify))
    assert response.status_code == 202, response.text
    job_id = response.json()["id"]

    def finished() -> dict[str, Any] | None:
        job: dict[str, Any] = client.get(f"/v1/jobs/{job_id}").json()
        return job if job["status"] in ("succeeded", "failed", "cancelled") else None

    return wait_for(finished, timeout=180, what=f"job {job_id} to finish")


def event_names(requests: list[Received]) -> list[str]:
    return [
        r.payload["state"]["status"]
        if r.payload["event"] == "state"
        else f"epoch {r.payload['epoch']['epoch']}"
        for r in requests
    ]


def assert_signed(requests: list[Received], secret: str) -> None:
    for request in requests:
        headers = request.headers
        assert verify(
            secret, request.body, headers["X-KJobs-Timestamp"], headers["X-KJobs-Signature"], time.time()
        )
        assert headers["X-KJobs-Delivery"] == request.payload["id"]
        assert headers["X-KJobs-Event"] == request.payload["event"]


def test_every_state_and_epoch_arrives_signed_and_in_order(client: httpx.Client, receiver: Receiver) -> None:
    job = run_job(client, {"url": receiver.url, "events": ["state", "epoch"]})
    assert job["status"] == "succeeded"
    wanted = ["queued", "running", "epoch 1", "epoch 2", "succeeded"]
    requests = wait_for(lambda: (r := receiver.of_job(job["id"])) and len(r) >= len(wanted) and r, timeout=60)
    assert event_names(requests) == wanted
    assert_signed(requests, client.get("/v1/webhooks/secret").json()["secret"])
    last = requests[-1].payload
    assert (last["tenant"], last["attempt"], last["state"]["stop_reason"]) == ("tests", 1, "completed")
    assert last["state"]["result"]["test_accuracy"] == job["result"]["test_accuracy"]
    assert requests[2].payload["epoch"]["loss"] > 0
    log = client.get(f"/v1/jobs/{job['id']}/deliveries").json()["items"]
    assert [(d["event"], d["outcome"], len(d["attempts"])) for d in log] == [
        ("state", "delivered", 1),
        ("state", "delivered", 1),
        ("epoch", "delivered", 1),
        ("epoch", "delivered", 1),
        ("state", "delivered", 1),
    ]
    assert all(d["attempts"][0]["status_code"] == 200 for d in log)
    summary = client.get(f"/v1/jobs/{job['id']}").json()["webhooks"]
    assert summary == {
        "url": receiver.url,
        "events": ["state", "epoch"],
        "created": 5,
        "delivered": 5,
        "failed": 0,
        "pending": 0,
        "dropped": 0,
    }


def test_a_refused_delivery_is_retried_and_logged(client: httpx.Client, receiver: Receiver) -> None:
    receiver.fail_first_attempts = True
    job = run_job(client, {"url": receiver.url})
    requests = wait_for(lambda: (r := receiver.of_job(job["id"])) and len(r) >= 6 and r, timeout=60)
    assert event_names(requests) == ["queued", "queued", "running", "running", "succeeded", "succeeded"]
    assert [r.headers["X-KJobs-Delivery-Attempt"] for r in requests] == ["1", "2"] * 3
    assert requests[0].body == requests[1].body, "a retry sends the same body, newly signed"
    assert_signed(requests, client.get("/v1/webhooks/secret").json()["secret"])

    def settled() -> list[dict[str, Any]] | None:
        log: list[dict[str, Any]] = client.get(f"/v1/jobs/{job['id']}/deliveries").json()["items"]
        return log if all(d["outcome"] != "pending" for d in log) else None

    for delivery in wait_for(settled, timeout=30, what="the deliveries to settle"):
        attempts = [(a["number"], a["outcome"], a["status_code"], a["error"]) for a in delivery["attempts"]]
        assert attempts == [(1, "failed", 503, "HTTP 503"), (2, "ok", 200, None)]
        assert delivery["outcome"] == "delivered"
        assert all(a["duration_ms"] >= 0 for a in delivery["attempts"])


def test_the_secret_is_the_tenants_own_and_rotates(client: httpx.Client, other_client: httpx.Client) -> None:
    first = other_client.get("/v1/webhooks/secret").json()
    assert first["secret"].startswith("whsec_")
    assert other_client.get("/v1/webhooks/secret").json() == first
    assert client.get("/v1/webhooks/secret").json()["secret"] != first["secret"]
    rotated = other_client.post("/v1/webhooks/secret/rotate")
    assert rotated.status_code == 200
    assert rotated.json()["secret"] not in (first["secret"], None)
    assert other_client.get("/v1/webhooks/secret").json() == rotated.json()
    assert httpx.get(f"{client.base_url}/v1/webhooks/secret").status_code == 401


def test_bad_webhook_urls_are_422s_naming_the_field(client: httpx.Client) -> None:
    response = client.post("/v1/jobs", json=tiny_spec(notify={"url": "https://u:p@example.com/hook"}))
    assert response.status_code == 422
    assert [e["field"] for e in response.json()["errors"]] == ["notify.url"]
    study = {"base": {"notify": {"url": "ftp://example.com"}}, "variants": [{"name": "a"}]}
    response = client.post("/v1/studies", json=study)
    assert response.status_code == 422
    assert [e["field"] for e in response.json()["errors"]] == ["variants.0.overrides.notify.url"]


def test_another_tenants_deliveries_are_not_found(client: httpx.Client, other_client: httpx.Client) -> None:
    job_id = client.post("/v1/jobs", json=tiny_spec(training={"epochs": 1})).json()["id"]
    assert other_client.get(f"/v1/jobs/{job_id}/deliveries").status_code == 404
    assert client.get(f"/v1/jobs/{job_id}/deliveries").json() == {"job_id": job_id, "items": []}
    assert client.get(f"/v1/jobs/{job_id}").json()["webhooks"] is None


@pytest.fixture
def tenants(api_url: str, settings_env: Settings) -> Iterator[Callable[[], httpx.Client]]:
    """Clients of tenants made for this test, each with deliveries of its own."""
    made: list[httpx.Client] = []

    def new_tenant() -> httpx.Client:
        key = new_api_key(settings_env, f"hooks-{uuid.uuid4().hex[:8]}")
        made.append(httpx.Client(base_url=api_url, timeout=30, headers={"Authorization": f"Bearer {key}"}))
        return made[-1]

    yield new_tenant
    for http in made:
        http.close()


def submit_idle(client: httpx.Client, url: str) -> str:
    """A job that stays queued (no test worker takes the gpu queue): its `queued` event alone."""
    response = client.post("/v1/jobs", json=tiny_spec(resources={"queue": "gpu"}, notify={"url": url}))
    assert response.status_code == 202, response.text
    job_id: str = response.json()["id"]
    return job_id


def settled_log(client: httpx.Client, job_id: str) -> list[dict[str, Any]] | None:
    log: list[dict[str, Any]] = client.get(f"/v1/jobs/{job_id}/deliveries").json()["items"]
    return log if log and all(d["outcome"] != "pending" for d in log) else None


def test_an_attempt_ends_by_its_deadline_however_slowly_the_answer_comes(
    tenants: Callable[[], httpx.Client], settings_env: Settings
) -> None:
    deadline, client = settings_env.webhook_timeout_seconds, tenants()
    # 200 at once, then a byte a second: a timeout per read would never fire. A retry is answered.
    with receiving(trickling(1.0, after_attempts=1)) as receiver:
        job_id = submit_idle(client, receiver.url)
        (delivery,) = wait_for(lambda: settled_log(client, job_id), timeout=60, what="the delivery to settle")
        visit = receiver.of_job(job_id)[0]
    first, second = delivery["attempts"]
    assert (first["outcome"], first["status_code"]) == ("failed", 200)
    assert first["error"] == "ReadTimeout: the attempt's deadline passed"
    assert deadline * 1000 <= first["duration_ms"] < (deadline + 1) * 1000
    assert visit.hung_up is not None, "the worker hung up"
    assert visit.hung_up - visit.arrived < deadline + 1
    assert (second["outcome"], second["status_code"], delivery["outcome"]) == ("ok", 200, "delivered")


def test_a_huge_answer_is_not_read_whole(tenants: Callable[[], httpx.Client], settings_env: Settings) -> None:
    client = tenants()
    with receiving(endless(length=256 * 2**20)) as receiver:
        job_id = submit_idle(client, receiver.url)
        (delivery,) = wait_for(lambda: settled_log(client, job_id), timeout=60, what="the delivery to settle")
        wait_for(lambda: receiver.seen() and receiver.active == 0, timeout=30, what="the answer to end")
    (attempt,) = delivery["attempts"]
    assert (attempt["outcome"], attempt["status_code"]) == ("ok", 200)
    assert attempt["duration_ms"] < settings_env.webhook_timeout_seconds * 1000
    (visit,) = receiver.seen()
    # What the receiver managed to write is what the kernel's buffers took: far from the 256 MiB.
    assert visit.sent < 32 * 2**20


def test_a_slow_tenant_does_not_hold_up_another_tenants_deliveries(
    tenants: Callable[[], httpx.Client], settings_env: Settings
) -> None:
    deadline, share = settings_env.webhook_timeout_seconds, settings_env.webhook_threads_per_tenant
    slow, quick = tenants(), tenants()
    # Every first attempt to the slow receiver runs past its deadline, and it has many due.
    with receiving(sleeping(deadline + 1)) as slow_receiver, receiving(answer_ok) as quick_receiver:
        for _ in range(3 * share):
            submit_idle(slow, slow_receiver.url)
        wait_for(lambda: slow_receiver.active >= share, timeout=30, what="the slow tenant's share of senders")
        submitted = time.monotonic()
        job_id = submit_idle(quick, quick_receiver.url)
        (visit,) = wait_for(lambda: quick_receiver.of_job(job_id), timeout=60, what="the quick delivery")
        assert slow_receiver.most_active == share, "the slow tenant held its share of senders, no more"
    # Well inside one slow attempt: the quick delivery waited for none of them.
    assert visit.arrived - submitted < deadline / 2
