"""What each change of a job writes to Redis: its creation, a status change, an epoch record and
its deletion, as ``Writes`` that the store sends in a transaction or a script.

Everything a change implies is here, beside the change itself: the list indexes, the
deployment's counters, the webhook deliveries, the pub/sub notice, the lease and, for a job
that ends, its entry in the endings outbox (``shared.jobs.endings``) and its expiry, and its place in the
scheduler's sets (``shared.scheduling.waiting``).
"""

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from shared.models.jobs import EpochRecord, JobRecord, JobStatus, Transition, utc_now
from shared.ops import telemetry
from shared.redis.codec import encode
from shared.redis.keys import RedisKeys
from shared.redis.writes import Writes
from shared.scheduling import waiting
from shared.webhooks import outbox
from shared.webhooks.outbox import EpochNotice

EXPIRY_MARGIN_SECONDS = 86_400
"""How long after the retention time a finished job's keys expire, should no sweep delete them."""


def epoch_ms(seconds: float) -> int:
    """A Unix time in whole milliseconds, the scores of the time-ordered sets."""
    return int(seconds * 1000)


def list_indexes(keys: RedisKeys, record: JobRecord) -> list[str]:
    """The sorted sets that list the job: the tenant's, its status's and its tags'."""
    tenant = record.tenant
    return [
        keys.jobs_index(tenant),
        keys.status_index(tenant, record.status.value),
        *(keys.tag_index(tenant, key, value) for key, value in record.spec.tags.items()),
    ]


def creation(keys: RedisKeys, record: JobRecord, dispatch_seconds: float | None) -> Writes:
    """A new job: its record, its first transition, its indexes, its count and webhook event,
    and, unless it is held back (None), its dispatch deadline: from the moment it is stored, a
    queued job whose message no worker took within ``dispatch_seconds`` is sent again, so a
    message lost between the store and the broker strands no job."""
    writes = Writes()
    if dispatch_seconds is not None:
        writes.zadd_from_now(keys.leases(), record.id, dispatch_seconds)
        writes.extend(waiting.enqueue(keys, record))
    writes.hset(keys.job(record.id), encode(record.model_dump(mode="json", exclude={"transitions"})))
    writes.rpush(keys.transitions(record.id), *(t.model_dump_json() for t in record.transitions))
    for index in list_indexes(keys, record):
        writes.zadd(index, {record.id: 0})
    telemetry.count_created(writes, keys, record.status)
    outbox.state_event(writes, keys, record, record.transitions[-1])
    return writes


def transition(
    keys: RedisKeys,
    current: JobRecord,
    to: JobStatus,
    attempt: int,
    reason: str | None,
    fields: Mapping[str, Any],
    *,
    lease_seconds: float | None = None,
    retention_seconds: int,
    lease_from: float | None = None,
) -> tuple[JobRecord, Writes]:
    """A status change of ``current``: the job as it becomes, and what that writes.

    With ``lease_seconds`` the job's lease runs until then (a running attempt's, or a requeued
    job's deadline to be picked up), counted from ``lease_from`` (Redis's clock; this host's
    when None). A job that ends enters the endings outbox and is scheduled
    for deletion after the retention time.
    """
    now = utc_now()
    updates: dict[str, Any] = {"status": to.value, "attempt": attempt, "updated_at": now.isoformat()}
    if to is JobStatus.RUNNING:
        updates["started_at"] = now.isoformat()
    if to.is_terminal():
        updates["finished_at"] = now.isoformat()
    updates.update(fields)
    change = Transition(status=to, at=now, attempt=attempt, reason=reason)
    written = {**current.model_dump(mode="json"), **updates}
    written["transitions"].append(change.model_dump(mode="json"))
    record = JobRecord.model_validate(written)
    writes = Writes()
    writes.hset(keys.job(current.id), encode(updates))
    writes.rpush(keys.transitions(current.id), change.model_dump_json())
    writes.publish(keys.job_events(current.id), "state")
    writes.zrem(keys.status_index(current.tenant, current.status.value), current.id)
    writes.zadd(keys.status_index(current.tenant, to.value), {current.id: 0})
    telemetry.count_transition(writes, keys, current.status, to)
    outbox.state_event(writes, keys, record, change)
    if lease_seconds is not None:
        base = now.timestamp() if lease_from is None else lease_from
        writes.zadd(keys.leases(), {current.id: epoch_ms(base + lease_seconds)})
    elif to is JobStatus.QUEUED or to.is_terminal():
        writes.zrem(keys.leases(), current.id)
    writes.extend(waiting.on_transition(keys, current, to))
    if to.is_terminal():
        writes.extend(ending(keys, current.id, now, retention_seconds))
    return record, writes


def ending(keys: RedisKeys, job_id: str, at: datetime, retention_seconds: int) -> Writes:
    """A job that ended: its follow-ups are due, and it is deleted after the retention time
    (by the sweep; its keys' expiry is the safety net, a day later)."""
    writes = Writes()
    writes.zadd(keys.endings(), {job_id: 0})  # due at once
    writes.zadd(keys.finished(), {job_id: epoch_ms(at.timestamp())})
    job_keys = (keys.job(job_id), keys.transitions(job_id), keys.epochs(job_id))
    for key in (*job_keys, *outbox.job_webhook_keys(keys, job_id)):
        writes.expire(key, retention_seconds + EXPIRY_MARGIN_SECONDS)
    return writes


def epoch(
    keys: RedisKeys,
    job_id: str,
    tenant: str,
    record: EpochRecord,
    updates: Mapping[str, Any],
    notice: EpochNotice | None,
) -> Writes:
    """A recorded epoch: the record itself, the job's progress, the notice and the counters."""
    writes = Writes()
    writes.rpush(keys.epochs(job_id), record.model_dump_json())
    writes.publish(keys.job_events(job_id), "epoch")
    writes.hset(keys.job(job_id), encode(updates))
    telemetry.observe_epoch(writes, keys, record.epoch_seconds)
    outbox.epoch_event(writes, keys, notice, job_id, tenant, record)
    return writes


def deletion(keys: RedisKeys, job_id: str, record: JobRecord | None) -> Writes:
    """A job deleted: its keys, its entries in every index and set, and its count by status."""
    writes = Writes()
    writes.delete(keys.job(job_id), keys.transitions(job_id), keys.epochs(job_id))
    if record is not None:
        for index in list_indexes(keys, record):
            writes.zrem(index, job_id)
        telemetry.count_purged(writes, keys, record.status)
        writes.extend(waiting.forget(keys, record))
    for time_ordered in (keys.finished(), keys.leases(), keys.endings()):
        writes.zrem(time_ordered, job_id)
    outbox.forget_job(writes, keys, job_id)
    return writes
