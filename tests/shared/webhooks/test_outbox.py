"""The webhook outbox on a real Redis: deliveries written with their events, claims, retries."""

import json
import time

import pytest

from shared.jobs.store import JobStore
from shared.models.jobs import JobRecord, JobStatus, new_job_id
from shared.models.spec import JobSpec
from shared.webhooks import outbox
from shared.webhooks.claims import AttemptResult, DeliveryClaims
from tests.helpers import epoch_record

URL = "http://127.0.0.1:9/hook"
OK = AttemptResult(ok=True, duration_ms=1.0, status_code=204)
FAILED = AttemptResult(ok=False, duration_ms=1.0, status_code=500, error="HTTP 500")


def new_job(store: JobStore, events: list[str] | None = None) -> str:
    notify = None if events is None else {"url": URL, "events": events}
    spec = JobSpec.model_validate({"notify": notify, "training": {"epochs": 3}})
    record, _ = store.create(JobRecord.new(new_job_id(), "acme", spec, "cpu"))
    return record.id


def run_two_epochs(store: JobStore, job_id: str) -> None:
    store.change_status(job_id, JobStatus.RUNNING, new_attempt=True)
    for epoch in (1, 2):
        store.append_epoch(job_id, epoch_record(epoch), None)
    store.change_status(job_id, JobStatus.SUCCEEDED, attempt=1, fields={"stop_reason": "completed"})


def events_of(claims: DeliveryClaims, job_id: str) -> list[str]:
    out = []
    for delivery in claims.deliveries(job_id):
        body = json.loads(delivery.body)
        out.append(body["state"]["status"] if body["event"] == "state" else f"epoch {body['epoch']['epoch']}")
    return out


@pytest.fixture
def claims(store: JobStore) -> DeliveryClaims:
    return DeliveryClaims(store.redis, store.keys)


def test_each_event_queues_a_delivery_in_order(store: JobStore, claims: DeliveryClaims) -> None:
    job_id = new_job(store, ["state", "epoch"])
    run_two_epochs(store, job_id)
    assert events_of(claims, job_id) == ["queued", "running", "epoch 1", "epoch 2", "succeeded"]
    body = json.loads(claims.deliveries(job_id)[-1].body)
    assert (body["job_id"], body["tenant"], body["attempt"]) == (job_id, "acme", 1)
    assert body["state"]["stop_reason"] == "completed"
    assert claims.counts(job_id) == {"created": 5, "delivered": 0, "failed": 0, "dropped": 0}


def test_only_the_events_asked_for_are_queued(store: JobStore, claims: DeliveryClaims) -> None:
    states, silent = new_job(store, ["state"]), new_job(store)
    for job_id in (states, silent):
        run_two_epochs(store, job_id)
    assert events_of(claims, states) == ["queued", "running", "succeeded"]
    assert claims.deliveries(silent) == []


def test_epoch_events_past_the_limit_are_dropped_and_counted(
    store: JobStore, claims: DeliveryClaims, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(outbox, "MAX_DELIVERIES_PER_JOB", 3)
    job_id = new_job(store, ["state", "epoch"])
    run_two_epochs(store, job_id)
    assert events_of(claims, job_id) == ["queued", "running", "epoch 1", "succeeded"]
    assert claims.counts(job_id)["dropped"] == 1


def test_one_sender_at_a_time_in_event_order(store: JobStore, claims: DeliveryClaims) -> None:
    job_id = new_job(store, ["state"])
    store.change_status(job_id, JobStatus.RUNNING, new_attempt=True)
    now = time.time()
    first = claims.claim(now, 60, "a")
    assert first is not None
    assert first.job_id == job_id
    assert claims.claim(now, 60, "b") is None, "a claimed job is nobody else's"
    sending = claims.begin(first, now)
    assert sending is not None
    assert json.loads(sending.body)["state"]["status"] == "queued"
    assert claims.finish(first, sending.id, OK, retry_at=None)
    second = claims.claim(time.time(), 60, "b")
    assert second is not None
    running = claims.begin(second, time.time())
    assert running is not None
    assert json.loads(running.body)["state"]["status"] == "running"
    assert claims.finish(second, running.id, OK, retry_at=None)
    assert claims.claim(time.time(), 60, "a") is None, "nothing is left to send"
    assert claims.counts(job_id)["delivered"] == 2


def test_a_failed_attempt_waits_for_its_retry_and_blocks_later_events(
    store: JobStore, claims: DeliveryClaims
) -> None:
    job_id = new_job(store, ["state"])
    store.change_status(job_id, JobStatus.RUNNING, new_attempt=True)
    now = time.time()
    claim = claims.claim(now, 60, "a")
    assert claim is not None
    delivery = claims.begin(claim, now)
    assert delivery is not None
    claims.finish(claim, delivery.id, FAILED, retry_at=now + 30)
    assert claims.claim(now + 1, 60, "a") is None, "the retry is not due, and `running` waits behind it"
    retry = claims.claim(now + 31, 60, "a")
    assert retry is not None
    again = claims.begin(retry, now + 31)
    assert again is not None
    assert again.id == delivery.id
    claims.finish(retry, again.id, OK, retry_at=None)
    (logged, _) = claims.deliveries(job_id)
    assert [(a.number, a.outcome, a.status_code) for a in logged.attempts] == [
        (1, "failed", 500),
        (2, "ok", 204),
    ]
    assert logged.outcome == "delivered"


def test_a_delivery_out_of_attempts_fails_and_the_next_goes_on(
    store: JobStore, claims: DeliveryClaims
) -> None:
    job_id = new_job(store, ["state"])
    store.change_status(job_id, JobStatus.RUNNING, new_attempt=True)
    claim = claims.claim(time.time(), 60, "a")
    assert claim is not None
    delivery = claims.begin(claim, time.time())
    assert delivery is not None
    claims.finish(claim, delivery.id, FAILED, retry_at=None)
    claim = claims.claim(time.time(), 60, "a")
    assert claim is not None
    following = claims.begin(claim, time.time())
    assert following is not None
    assert following.id != delivery.id
    assert claims.counts(job_id)["failed"] == 1


def test_a_dead_senders_claim_is_reclaimed_and_its_attempt_recorded_lost(
    store: JobStore, claims: DeliveryClaims
) -> None:
    job_id = new_job(store, ["state"])
    now = time.time()
    dead = claims.claim(now, 5, "dead")
    assert dead is not None
    abandoned = claims.begin(dead, now)
    assert abandoned is not None
    assert claims.reclaim_expired(now + 1) == [], "a live claim stays"
    assert claims.reclaim_expired(now + 6) == [job_id]
    taken = claims.claim(now + 6, 60, "alive")
    assert taken is not None
    resumed = claims.begin(taken, now + 6)
    assert resumed is not None
    assert resumed.id == abandoned.id
    assert [(a.number, a.outcome) for a in resumed.attempts] == [(1, "lost"), (2, "sending")]
    assert not claims.finish(dead, abandoned.id, OK, retry_at=None), "the dead sender's answer is refused"
    assert claims.finish(taken, resumed.id, OK, retry_at=None)


def test_deliveries_expire_and_are_deleted_with_the_job(store: JobStore, claims: DeliveryClaims) -> None:
    job_id = new_job(store, ["state"])
    run_two_epochs(store, job_id)
    for key in outbox.job_webhook_keys(store.keys, job_id):
        assert store.redis.ttl(key) > store.retention_seconds, key
    store.purge(job_id)
    assert claims.deliveries(job_id) == []
    assert not any(store.redis.exists(key) for key in outbox.job_webhook_keys(store.keys, job_id))
    # Its due entry is dropped by the first claim on it, which finds nothing to send.
    claim = claims.claim(time.time(), 60, "a")
    assert claim is not None
    assert claim.job_id == job_id
    assert claims.begin(claim, time.time()) is None
    assert claims.claim(time.time(), 60, "a") is None
    for key in (store.keys.webhooks_due("acme"), store.keys.webhook_tenants(), store.keys.webhooks_claimed()):
        assert store.redis.zcard(key) == 0, key
