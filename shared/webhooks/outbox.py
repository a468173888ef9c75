"""The webhook outbox: deliveries written in the same Redis transaction as their event.

The store adds these writes to those of a status change or an epoch record, so an event and
its delivery are stored together or not at all, and survive any process's restart. Each
job's deliveries wait in a queue in event order; each tenant's sorted set of due jobs, and a
sorted set of the tenants with due jobs, tell the workers' deliverers which job has one to send
(``shared.webhooks.claims``).

A job keeps at most ``MAX_DELIVERIES_PER_JOB`` deliveries: past that, epoch events are dropped
(and counted); status changes, a handful per attempt, are always kept.
"""

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from redis.client import Pipeline

from shared.models.jobs import EpochRecord, JobRecord, Transition, new_job_id
from shared.models.spec import NotifySpec
from shared.models.webhooks import Delivery, WebhookEvent
from shared.redis.keys import RedisKeys
from shared.redis.writes import Writes

MAX_DELIVERIES_PER_JOB = 500


class StoredDelivery(Delivery):
    """A delivery as stored: with the exact body every attempt sends, and who is sending it."""

    tenant: str
    body: str
    sender: str | None = None

    def public(self) -> Delivery:
        """The delivery as its job's owner sees it."""
        return Delivery.model_validate(self.model_dump(exclude={"tenant", "body", "sender"}))


def state_event(writes: Writes, keys: RedisKeys, record: JobRecord, transition: Transition) -> None:
    """The delivery of a status change, if the job asks for it."""
    notify = record.spec.notify
    if notify is None or "state" not in notify.events:
        return
    data = {
        **transition.model_dump(mode="json"),
        "stop_reason": record.stop_reason.value if record.stop_reason else None,
        "result": record.result.model_dump(mode="json") if record.result else None,
        "error": record.error.model_dump(mode="json") if record.error else None,
    }
    _queue(writes, keys, record.id, record.tenant, notify.url, "state", transition.attempt, data)


@dataclass(frozen=True)
class EpochNotice:
    """Whether an epoch event is to be delivered: decided before the transaction writes."""

    url: str
    room: bool


def plan_epoch_event(pipe: Pipeline, keys: RedisKeys, job_id: str, notify: Any) -> EpochNotice | None:
    """Read on a watching ``pipe``, before its ``multi()``: whether the job (``notify`` is its
    spec's, as stored) wants epoch events, and whether it has room for one more delivery."""
    if notify is None:
        return None
    spec = NotifySpec.model_validate(notify)
    if "epoch" not in spec.events:
        return None
    return EpochNotice(spec.url, int(pipe.hlen(keys.webhook_deliveries(job_id))) < MAX_DELIVERIES_PER_JOB)


def epoch_event(
    writes: Writes, keys: RedisKeys, notice: EpochNotice | None, job_id: str, tenant: str, record: EpochRecord
) -> None:
    """The delivery of an epoch record as planned (or its count as dropped)."""
    if notice is None:
        return
    if not notice.room:
        writes.hincrby(keys.webhook_counts(job_id), "dropped", 1)
        return
    data = record.model_dump(mode="json")
    _queue(writes, keys, job_id, tenant, notice.url, "epoch", record.attempt, data)


def _queue(
    writes: Writes,
    keys: RedisKeys,
    job_id: str,
    tenant: str,
    url: str,
    event: WebhookEvent,
    attempt: int,
    data: dict[str, Any],
) -> None:
    delivery_id = new_job_id()  # the job id's form: unique, and sorts by creation time
    now = datetime.fromisoformat(data["at"])
    body = {
        "id": delivery_id,
        "event": event,
        "created_at": now.isoformat(),
        "job_id": job_id,
        "tenant": tenant,
        "attempt": attempt,
        event: data,
    }
    delivery = StoredDelivery(
        id=delivery_id,
        event=event,
        job_id=job_id,
        attempt=attempt,
        url=url,
        tenant=tenant,
        created_at=now,
        body=json.dumps(body, separators=(",", ":")),
    )
    writes.hset(keys.webhook_deliveries(job_id), {delivery_id: delivery.model_dump_json()})
    writes.rpush(keys.webhook_queue(job_id), delivery_id)
    writes.hincrby(keys.webhook_counts(job_id), "created", 1)
    due_ms = int(now.timestamp() * 1000)
    # A job already due (perhaps later, after a failed attempt) keeps its time; its tenant's turn
    # comes no later than this delivery is due.
    writes.zadd(keys.webhooks_due(tenant), {job_id: due_ms}, only_new=True)
    writes.zadd(keys.webhook_tenants(), {tenant: due_ms}, only_lower=True)


def job_webhook_keys(keys: RedisKeys, job_id: str) -> tuple[str, ...]:
    """The keys holding one job's deliveries, which expire and are deleted with the job."""
    return keys.webhook_deliveries(job_id), keys.webhook_queue(job_id), keys.webhook_counts(job_id)


def forget_job(writes: Writes, keys: RedisKeys, job_id: str) -> None:
    """Delete the job's deliveries and let its claim go. Its entry in its tenant's due set, if
    any, is dropped by the first deliverer to claim it and find its queue gone."""
    writes.delete(*job_webhook_keys(keys, job_id))
    writes.zrem(keys.webhooks_claimed(), job_id)
