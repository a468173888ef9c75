"""The webhook outbox: deliveries written in the same Redis transaction as their event.

The store calls these hooks where it writes a status change or an epoch record, so an event
and its delivery are stored together or not at all, and survive any process's restart. Each
job's deliveries wait in a queue in event order; a sorted set of due jobs tells the workers'
deliverers which job has one to send (``shared.webhooks.claims``).

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

MAX_DELIVERIES_PER_JOB = 500


class StoredDelivery(Delivery):
    """A delivery as stored: with the exact body every attempt sends, and who is sending it."""

    tenant: str
    body: str
    sender: str | None = None

    def public(self) -> Delivery:
        """The delivery as its job's owner sees it."""
        return Delivery.model_validate(self.model_dump(exclude={"tenant", "body", "sender"}))


def state_event(pipe: Pipeline, keys: RedisKeys, record: JobRecord, transition: Transition) -> None:
    """After ``pipe.multi()``: queue the delivery of a status change, if the job asks for it."""
    notify = record.spec.notify
    if notify is None or "state" not in notify.events:
        return
    data = {
        **transition.model_dump(mode="json"),
        "stop_reason": record.stop_reason.value if record.stop_reason else None,
        "result": record.result.model_dump(mode="json") if record.result else None,
        "error": record.error.model_dump(mode="json") if record.error else None,
    }
    _queue(pipe, keys, record.id, record.tenant, notify.url, "state", transition.attempt, data)


@dataclass(frozen=True)
class EpochNotice:
    """Whether an epoch event is to be delivered: decided before the transaction writes."""

    url: str
    room: bool


def plan_epoch_event(pipe: Pipeline, keys: RedisKeys, job_id: str, notify: Any) -> EpochNotice | None:
    """Before ``pipe.multi()``: whether the job (``notify`` is its spec's, as stored) wants epoch
    events, and whether it has room for one more delivery."""
    if notify is None:
        return None
    spec = NotifySpec.model_validate(notify)
    if "epoch" not in spec.events:
        return None
    return EpochNotice(spec.url, int(pipe.hlen(keys.webhook_deliveries(job_id))) < MAX_DELIVERIES_PER_JOB)


def epoch_event(
    pipe: Pipeline, keys: RedisKeys, notice: EpochNotice | None, job_id: str, tenant: str, record: EpochRecord
) -> None:
    """After ``pipe.multi()``: queue the delivery of an epoch record as planned (or count it dropped)."""
    if notice is None:
        return
    if not notice.room:
        pipe.hincrby(keys.webhook_counts(job_id), "dropped", 1)
        return
    data = record.model_dump(mode="json")
    _queue(pipe, keys, job_id, tenant, notice.url, "epoch", record.attempt, data)


def _queue(
    pipe: Pipeline,
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
    pipe.hset(keys.webhook_deliveries(job_id), delivery_id, delivery.model_dump_json())
    pipe.rpush(keys.webhook_queue(job_id), delivery_id)
    pipe.hincrby(keys.webhook_counts(job_id), "created", 1)
    # NX: a job already due (perhaps later, after a failed attempt) keeps its time.
    pipe.zadd(keys.webhooks_due(), {job_id: int(now.timestamp() * 1000)}, nx=True)


def job_webhook_keys(keys: RedisKeys, job_id: str) -> tuple[str, ...]:
    """The keys holding one job's deliveries, which expire and are deleted with the job."""
    return keys.webhook_deliveries(job_id), keys.webhook_queue(job_id), keys.webhook_counts(job_id)


def forget_job(pipe: Pipeline, keys: RedisKeys, job_id: str) -> None:
    """After ``pipe.multi()``: delete the job's deliveries and take it off the deliverers' sets."""
    pipe.delete(*job_webhook_keys(keys, job_id))
    pipe.zrem(keys.webhooks_due(), job_id)
    pipe.zrem(keys.webhooks_claimed(), job_id)
