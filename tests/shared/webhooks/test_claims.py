"""Claims on a real Redis: tenants take turns, a busy tenant is passed over, and concurrent
senders never share a job."""

import threading
import time
from collections import Counter

import pytest

from shared.jobs.store import JobStore
from shared.models.jobs import JobRecord, JobStatus, new_job_id
from shared.models.spec import JobSpec
from shared.webhooks.claims import AttemptResult, Claim, DeliveryClaims

URL = "http://127.0.0.1:9/hook"
OK = AttemptResult(ok=True, duration_ms=1.0, status_code=204)
FAILED = AttemptResult(ok=False, duration_ms=1.0, status_code=500, error="HTTP 500")


def new_job(store: JobStore, tenant: str) -> str:
    """A job of ``tenant`` whose `queued` event waits to be delivered."""
    spec = JobSpec.model_validate({"notify": {"url": URL, "events": ["state"]}, "training": {"epochs": 1}})
    record, _ = store.create(JobRecord.new(new_job_id(), tenant, spec, "cpu"))
    return record.id


@pytest.fixture
def claims(store: JobStore) -> DeliveryClaims:
    return DeliveryClaims(store.redis, store.keys)


def claim_all(claims: DeliveryClaims, now: float) -> list[Claim]:
    taken = []
    while (claim := claims.claim(now, 60, "s")) is not None:
        taken.append(claim)
    return taken


def test_tenants_take_turns_however_many_jobs_each_has_due(store: JobStore, claims: DeliveryClaims) -> None:
    busy = [new_job(store, "busy") for _ in range(3)]
    quiet = new_job(store, "quiet")  # due after every one of busy's
    taken = claim_all(claims, time.time() + 10)
    assert [(c.tenant, c.job_id) for c in taken] == [
        ("busy", busy[0]),
        ("quiet", quiet),
        ("busy", busy[1]),
        ("busy", busy[2]),
    ]


def test_a_tenant_passed_over_keeps_its_turn(store: JobStore, claims: DeliveryClaims) -> None:
    first, second = new_job(store, "first"), new_job(store, "second")
    now = time.time() + 10
    passed = claims.claim(now, 60, "s", skip={"first"})
    assert passed is not None
    assert passed.job_id == second
    assert claims.claim(now, 60, "s", skip={"first"}) is None, "nothing is due but the tenant passed over"
    taken = claims.claim(now, 60, "s")
    assert taken is not None
    assert taken.job_id == first


def test_a_retry_waiting_holds_back_its_job_but_not_the_tenants_others(
    store: JobStore, claims: DeliveryClaims
) -> None:
    failing = new_job(store, "acme")
    now = time.time()
    claim = claims.claim(now, 60, "s")
    assert claim is not None
    delivery = claims.begin(claim, now)
    assert delivery is not None
    claims.finish(claim, delivery.id, FAILED, retry_at=now + 300)
    assert claims.claim(now + 1, 60, "s") is None, "the tenant's one job waits for its retry"
    fresh = new_job(store, "acme")
    taken = claims.claim(time.time() + 1, 60, "s")
    assert taken is not None
    assert taken.job_id == fresh, "a new job of the tenant is due at once"
    assert claims.claim(time.time() + 1, 60, "s") is None
    retry = claims.claim(now + 301, 60, "s")
    assert retry is not None
    assert retry.job_id == failing


def test_jobs_an_earlier_version_left_due_are_adopted(store: JobStore, claims: DeliveryClaims) -> None:
    job_id = new_job(store, "acme")
    keys = store.keys
    due_ms = store.redis.zscore(keys.webhooks_due("acme"), job_id)
    assert due_ms is not None
    store.redis.delete(keys.webhooks_due("acme"), keys.webhook_tenants())
    store.redis.zadd(keys.legacy_webhooks_due(), {job_id: due_ms})
    assert claims.claim(time.time(), 60, "s") is None
    assert claims.reclaim_expired(time.time()) == []
    assert store.redis.zcard(keys.legacy_webhooks_due()) == 0
    assert store.redis.zscore(keys.webhooks_due("acme"), job_id) == due_ms
    taken = claims.claim(time.time(), 60, "s")
    assert taken is not None
    assert (taken.job_id, taken.tenant) == (job_id, "acme")


def test_concurrent_senders_send_each_delivery_once_and_in_order(
    store: JobStore, claims: DeliveryClaims
) -> None:
    jobs = [new_job(store, f"t{n % 3}") for n in range(9)]
    for job_id in jobs:  # a second event each: `running` is sent only once `queued` is settled
        store.change_status(job_id, JobStatus.RUNNING, new_attempt=True)
    total = 2 * len(jobs)
    sent: Counter[str] = Counter()
    lock = threading.Lock()
    done = threading.Event()

    def sender(name: str) -> None:
        give_up = time.monotonic() + 30
        while not done.is_set() and time.monotonic() < give_up:
            claim = claims.claim(time.time(), 60, name)
            delivery = None if claim is None else claims.begin(claim, time.time())
            if claim is None or delivery is None:
                done.wait(0.01)
                continue
            assert claims.finish(claim, delivery.id, OK, retry_at=None)
            with lock:
                sent[delivery.id] += 1
                if sum(sent.values()) == total:
                    done.set()

    threads = [threading.Thread(target=sender, args=(f"s{n}",)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(sent) == total
    assert set(sent.values()) == {1}, "no delivery was sent twice"
    for job_id in jobs:
        queued, running = claims.deliveries(job_id)
        assert [len(queued.attempts), len(running.attempts)] == [1, 1]
        assert queued.attempts[0].started_at <= running.attempts[0].started_at
        assert claims.counts(job_id)["delivered"] == 2
