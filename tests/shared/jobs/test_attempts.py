"""Attempts and leases on a real Redis: claims, takeovers, fencing and the settling of lost workers."""

import time

import pytest

from shared.errors import StaleAttempt
from shared.jobs.attempts import AttemptStore
from shared.jobs.store import JobStore
from shared.models.jobs import CheckpointRef, JobRecord, JobStatus, new_job_id
from shared.models.spec import JobSpec
from shared.redis.clock import redis_seconds
from tests.helpers import epoch_record as epoch
from tests.helpers import wait_for

LEASE = 0.3


@pytest.fixture
def attempts(store: JobStore) -> AttemptStore:
    return AttemptStore(store, lease_seconds=LEASE, max_attempts=2)


def queued_job(store: JobStore) -> str:
    record = JobRecord.new(new_job_id(), "t1", JobSpec(), "cpu")
    store.create(record)
    return record.id


def expire(attempts: AttemptStore, job_id: str) -> None:
    wait_for(lambda: job_id in attempts.expired(), timeout=5, interval=0.05, what="the lease to expire")


def test_claiming_a_queued_job_starts_attempt_one_under_a_lease(attempts: AttemptStore) -> None:
    job_id = queued_job(attempts.store)
    record = attempts.claim(job_id)
    assert record is not None
    assert (record.status, record.attempt, record.transitions[-1].reason) == (JobStatus.RUNNING, 1, "started")
    assert job_id not in attempts.expired()


def test_a_duplicate_delivery_does_not_start_a_second_attempt(attempts: AttemptStore) -> None:
    job_id = queued_job(attempts.store)
    attempts.claim(job_id)
    assert attempts.claim(job_id) is None
    assert attempts.store.get(job_id).attempt == 1


def test_renewing_keeps_the_lease_alive(attempts: AttemptStore) -> None:
    job_id = queued_job(attempts.store)
    attempts.claim(job_id)
    for _ in range(4):
        time.sleep(LEASE / 3)
        assert attempts.renew(job_id, 1) is JobStatus.RUNNING
    assert job_id not in attempts.expired()


def test_an_expired_lease_is_taken_over_by_the_next_claim(attempts: AttemptStore) -> None:
    job_id = queued_job(attempts.store)
    attempts.claim(job_id)
    expire(attempts, job_id)
    record = attempts.claim(job_id)
    assert record is not None
    assert (record.status, record.attempt) == (JobStatus.RUNNING, 2)
    assert "takes over" in (record.transitions[-1].reason or "")


def test_a_replaced_attempt_can_write_nothing(attempts: AttemptStore) -> None:
    store = attempts.store
    job_id = queued_job(store)
    attempts.claim(job_id)
    store.append_epoch(job_id, epoch(1, attempt=1), None)
    expire(attempts, job_id)
    attempts.claim(job_id)
    with pytest.raises(StaleAttempt):
        attempts.renew(job_id, 1)
    with pytest.raises(StaleAttempt):
        store.append_epoch(job_id, epoch(2, attempt=1), None)
    with pytest.raises(StaleAttempt):
        store.change_status(job_id, JobStatus.SUCCEEDED, attempt=1)
    assert store.append_epoch(job_id, epoch(2, attempt=2), None) is True
    assert [(r.epoch, r.attempt) for r in store.epoch_records(job_id)] == [(1, 1), (2, 2)]


def test_settling_a_lost_attempt_requeues_the_job(attempts: AttemptStore) -> None:
    job_id = queued_job(attempts.store)
    attempts.claim(job_id)
    assert attempts.settle(job_id) is None, "a live lease is not settled"
    expire(attempts, job_id)
    outcome = attempts.settle(job_id)
    assert outcome is not None
    settled, send = outcome
    assert (settled.status, settled.attempt, send) == (JobStatus.QUEUED, 1, True)
    assert "stopped renewing its lease" in (settled.transitions[-1].reason or "")
    assert job_id not in attempts.expired(), "a requeued job holds a dispatch lease"
    resumed = attempts.claim(job_id)
    assert resumed is not None
    assert (resumed.attempt, resumed.transitions[-1].reason) == (2, "attempt 2 resumes after epoch 0")


def test_a_requeued_job_nobody_picks_up_has_its_message_sent_again(store: JobStore) -> None:
    store.dispatch_seconds = 0.2
    attempts = AttemptStore(store, lease_seconds=0.05, max_attempts=2)
    job_id = queued_job(store)
    attempts.claim(job_id)
    expire(attempts, job_id)
    assert attempts.settle(job_id) is not None
    expire(attempts, job_id)  # its dispatch deadline
    outcome = attempts.settle(job_id)
    assert outcome is not None
    assert (outcome[0].status, outcome[1]) == (JobStatus.QUEUED, True)
    assert job_id not in attempts.expired()


def test_a_job_that_loses_its_last_attempt_fails_under_a_new_attempt_number(attempts: AttemptStore) -> None:
    job_id = queued_job(attempts.store)
    attempts.claim(job_id)
    expire(attempts, job_id)
    taken_over = attempts.claim(job_id)
    assert taken_over is not None
    assert taken_over.attempt == 2
    expire(attempts, job_id)
    assert attempts.claim(job_id) is None, "a claim never ends a job: the reaper keeps its model"
    outcome = attempts.settle(job_id)
    assert outcome is not None
    settled, send = outcome
    assert (settled.status, settled.attempt, send) == (JobStatus.FAILED, 3, False)
    assert settled.error is not None
    assert settled.error.type == "worker_lost"
    with pytest.raises(StaleAttempt):
        attempts.store.change_status(job_id, JobStatus.SUCCEEDED, attempt=2)


def test_a_cancelling_job_whose_worker_is_lost_ends_cancelled_naming_its_last_checkpoint(
    attempts: AttemptStore,
) -> None:
    job_id = queued_job(attempts.store)
    attempts.claim(job_id)
    attempts.store.append_epoch(job_id, epoch(1, attempt=1), None)
    attempts.store.change_status(job_id, JobStatus.CANCELLING)
    expire(attempts, job_id)
    outcome = attempts.settle(job_id)
    assert outcome is not None
    settled, send = outcome
    assert (settled.status, settled.stop_reason, settled.has_model) == (
        JobStatus.CANCELLED,
        "cancelled",
        False,
    )
    assert settled.model_checkpoint == CheckpointRef(attempt=1, epoch=1), "its follow-ups make it the model"
    assert (settled.attempt, send) == (2, False)


def test_a_finished_job_is_scheduled_for_deletion_and_purged(attempts: AttemptStore) -> None:
    store = attempts.store
    job_id = queued_job(store)
    store.change_status(job_id, JobStatus.CANCELLED)
    assert store.finished_before(time.time() + 1) == [job_id]
    assert 0 < store.redis.ttl(store.keys.job(job_id)) <= store.retention_seconds + 86_400
    store.purge(job_id)
    assert store.finished_before(time.time() + 1) == []
    assert store.redis.exists(store.keys.job(job_id), store.keys.transitions(job_id)) == 0
    assert store.redis.zcard(store.keys.jobs_index("t1")) == 0


@pytest.mark.parametrize("skew", [-120.0, 120.0])
def test_leases_follow_redis_clock_not_the_hosts(
    attempts: AttemptStore, monkeypatch: pytest.MonkeyPatch, skew: float
) -> None:
    job_id = queued_job(attempts.store)
    host_time = time.time
    monkeypatch.setattr(time, "time", lambda: host_time() + skew)  # this host's clock is off
    redis_now = redis_seconds(attempts.store.redis)
    attempts.claim(job_id)
    claimed = attempts.store.redis.zscore(attempts.store.keys.leases(), job_id)
    attempts.renew(job_id, 1)
    renewed = attempts.store.redis.zscore(attempts.store.keys.leases(), job_id)
    for until in (claimed, renewed):
        assert until is not None
        assert abs(until / 1000 - (redis_now + LEASE)) < 2.0, "the lease runs from Redis's time"
    assert job_id not in attempts.expired(), "judged by Redis's time, the lease is live"
    expire(attempts, job_id)  # and it expires when Redis's time says so


def test_a_new_job_carries_a_dispatch_deadline_on_redis_s_clock_from_when_it_is_stored(
    store: JobStore,
) -> None:
    # Scores are whole milliseconds of Redis's clock, rounded down.
    dispatch_ms = int(store.dispatch_seconds * 1000)
    before = int(redis_seconds(store.redis) * 1000)
    job_id = queued_job(store)
    deadline = store.redis.zscore(store.keys.leases(), job_id)
    after = int(redis_seconds(store.redis) * 1000)
    assert deadline is not None
    assert before + dispatch_ms <= deadline <= after + dispatch_ms


def test_a_new_job_whose_message_was_lost_is_sent_again_at_its_deadline(store: JobStore) -> None:
    store.dispatch_seconds = 0.2
    attempts = AttemptStore(store, lease_seconds=LEASE, max_attempts=2)
    job_id = queued_job(store)
    assert job_id not in attempts.expired(), "within its deadline: its message may be on its way"
    expire(attempts, job_id)
    outcome = attempts.settle(job_id)
    assert outcome is not None
    settled, send = outcome
    assert (settled.status, send) == (JobStatus.QUEUED, True)
    assert job_id not in attempts.expired(), "a fresh deadline for the message sent again"
    assert attempts.claim(job_id) is not None


def test_a_claimed_or_cancelled_job_has_no_dispatch_deadline_left(store: JobStore) -> None:
    attempts = AttemptStore(store, lease_seconds=60, max_attempts=2)
    started, cancelled = queued_job(store), queued_job(store)
    attempts.claim(started)
    store.change_status(cancelled, JobStatus.CANCELLED, reason="cancelled while queued")
    running_lease = store.redis.zscore(store.keys.leases(), started)
    assert running_lease is not None
    assert running_lease / 1000 <= redis_seconds(store.redis) + 60, "the running lease, not the deadline"
    assert store.redis.zscore(store.keys.leases(), cancelled) is None
