"""Sending from the webhook outbox: claims, attempts and their results, each atomic.

A deliverer claims a due job (so no other sends for it meanwhile), starts an attempt on the
head of that job's queue, POSTs it, and records the answer, which settles the delivery or
schedules its retry. One job's deliveries are therefore sent one at a time, in event order.
A claim expires: a job whose deliverer died is reclaimed, and the attempt it left in flight
is recorded as ``lost`` before the next one starts, so no attempt is ever sent twice.

Tenants take turns. Each has a sorted set of its due jobs, and a claim goes to the tenant that
has waited longest for a turn: one that has just had a turn waits behind every tenant whose work
was due before then, and a caller passes over the tenants it is busy enough with (``skip``). So
a tenant with many due deliveries, or with a slow receiver, gets its share of the senders and
no more.
"""

import time
from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from redis import Redis
from redis.client import Pipeline

from shared.models.jobs import JobRecord
from shared.models.webhooks import DeliveryAttempt, WebhookSummary
from shared.redis.codec import strings
from shared.redis.keys import RedisKeys
from shared.redis.watch import watched
from shared.webhooks.outbox import StoredDelivery

T = TypeVar("T")
LOST_ERROR = "its sender stopped before recording an answer"


@dataclass(frozen=True)
class Claim:
    """A deliverer's hold on one job's deliveries, until ``expires_ms``."""

    job_id: str
    tenant: str
    expires_ms: int
    sender: str


@dataclass(frozen=True)
class AttemptResult:
    """What one POST came to."""

    ok: bool
    duration_ms: float
    status_code: int | None = None
    error: str | None = None
    retryable: bool = True


def _ms(seconds: float) -> int:
    return int(seconds * 1000)


def _scored(reply: Any) -> list[tuple[str, int]]:
    """A sorted set's WITHSCORES reply as (member, score) pairs; our scores are whole ms."""
    return [(str(member), int(score)) for member, score in reply]


class DeliveryClaims:
    """The deliverers' side of the outbox."""

    def __init__(self, redis: Redis, keys: RedisKeys) -> None:
        self.redis, self.keys = redis, keys

    def reclaim_expired(self, now: float) -> list[str]:
        """Make the jobs whose deliverer's claim expired due again (and those an earlier version
        left due), in their tenants' due sets; the ids of the expired ones."""
        claimed = self.keys.webhooks_claimed()

        def step(pipe: Pipeline) -> list[str]:
            expired = strings(pipe.zrangebyscore(claimed, "-inf", _ms(now)))
            if not expired:
                pipe.unwatch()
                return []
            owners = {job_id: self._tenant_of(pipe, job_id) for job_id in expired}
            pipe.multi()
            pipe.zrem(claimed, *expired)
            for job_id, tenant in owners.items():
                if tenant is not None:  # else its deliveries are gone with it: nothing to send
                    self._make_due(pipe, tenant, job_id, _ms(now))
            pipe.execute()
            return expired

        self.adopt_legacy_due()
        return watched(self.redis, [claimed], step)

    def adopt_legacy_due(self, batch: int = 100) -> list[str]:
        """Move up to ``batch`` jobs from the one due set of earlier versions into their tenants'
        due sets, keeping their times; their ids."""
        legacy = self.keys.legacy_webhooks_due()

        def step(pipe: Pipeline) -> list[str]:
            found = _scored(pipe.zrange(legacy, 0, batch - 1, withscores=True))
            if not found:
                pipe.unwatch()
                return []
            owners = {job_id: self._tenant_of(pipe, job_id) for job_id, _ in found}
            pipe.multi()
            pipe.zrem(legacy, *owners)
            for job_id, due_ms in found:
                tenant = owners[job_id]
                if tenant is not None:
                    self._make_due(pipe, tenant, job_id, due_ms)
            pipe.execute()
            return list(owners)

        return watched(self.redis, [legacy], step)

    def claim(self, now: float, hold_seconds: float, sender: str, skip: Collection[str] = ()) -> Claim | None:
        """Take, for ``hold_seconds``, the most overdue job of the tenant whose turn it is, passing
        over the tenants in ``skip``; None if no other tenant has a job due."""
        while True:
            tenant = self._next_tenant(now, skip)
            if tenant is None:
                return None
            taken = self._claim_of(tenant, now, hold_seconds, sender)
            if taken is not None:
                return taken
            # The tenant had nothing due after all, or its turn moved: its entry is set right now.

    def _next_tenant(self, now: float, skip: Collection[str]) -> str | None:
        # Each tenant skipped can hide at most one ahead of the first one not skipped.
        ready = self.redis.zrangebyscore(
            self.keys.webhook_tenants(), "-inf", _ms(now), start=0, num=len(skip) + 1
        )
        return next((tenant for tenant in strings(ready) if tenant not in skip), None)

    def _claim_of(self, tenant: str, now: float, hold_seconds: float, sender: str) -> Claim | None:
        """The tenant's most overdue job, claimed; None (the tenant's turn set right) when it has
        none due now, or when its turn moved since it was picked."""
        tenants, due, claimed = (
            self.keys.webhook_tenants(),
            self.keys.webhooks_due(tenant),
            self.keys.webhooks_claimed(),
        )
        now_ms = _ms(now)

        def step(pipe: Pipeline) -> Claim | None:
            turn = pipe.zscore(tenants, tenant)
            heads = _scored(pipe.zrange(due, 0, 1, withscores=True))
            if turn is None or turn > now_ms:
                pipe.unwatch()
                return None
            if not heads or heads[0][1] > now_ms:  # its turn comes when its next job is due
                pipe.multi()
                self._set_turn(pipe, tenant, heads[0][1] if heads else None)
                pipe.execute()
                return None
            job_id, held = heads[0][0], pipe.zscore(claimed, heads[0][0]) is not None
            expires = _ms(now + hold_seconds)
            pipe.multi()
            pipe.zrem(due, job_id)
            # After a turn, the tenant waits behind every tenant whose work was due before now.
            following = max(heads[1][1], int(turn) if held else now_ms) if len(heads) > 1 else None
            self._set_turn(pipe, tenant, following)
            if not held:
                pipe.zadd(claimed, {job_id: expires})
            pipe.execute()
            # A job another deliverer holds is only taken off the due set: its holder makes it
            # due again when it finishes, so one job never has two senders.
            return None if held else Claim(job_id, tenant, expires, sender)

        return watched(self.redis, [tenants, due, claimed], step)

    def _set_turn(self, pipe: Pipeline, tenant: str, at_ms: int | None) -> None:
        if at_ms is None:
            pipe.zrem(self.keys.webhook_tenants(), tenant)
        else:
            pipe.zadd(self.keys.webhook_tenants(), {tenant: at_ms})

    def _make_due(self, pipe: Pipeline, tenant: str, job_id: str, due_ms: int) -> None:
        pipe.zadd(self.keys.webhooks_due(tenant), {job_id: due_ms})
        # The tenant's turn comes no later than the job is due; an earlier turn stays.
        pipe.zadd(self.keys.webhook_tenants(), {tenant: due_ms}, lt=True)

    def _tenant_of(self, pipe: Pipeline, job_id: str) -> str | None:
        """Read on a watching pipe: the tenant of the job's next delivery; None when it has none."""
        head = pipe.lindex(self.keys.webhook_queue(job_id), 0)
        raw = None if head is None else pipe.hget(self.keys.webhook_deliveries(job_id), str(head))
        return None if raw is None else StoredDelivery.model_validate_json(str(raw)).tenant

    def begin(self, claim: Claim, now: float) -> StoredDelivery | None:
        """Start an attempt on the job's next delivery; None (and the claim let go) when none is left."""
        deliveries, queue = self.keys.webhook_deliveries(claim.job_id), self.keys.webhook_queue(claim.job_id)

        def step(pipe: Pipeline) -> StoredDelivery | bool | None:
            head = pipe.lindex(queue, 0)
            raw = pipe.hget(deliveries, str(head)) if head is not None else None
            pipe.multi()
            if head is None:
                self._release(pipe, claim, due_at=None)
                pipe.execute()
                return None
            if raw is None:  # its record is gone (the job was deleted): skip it
                pipe.lpop(queue)
                pipe.execute()
                return False
            delivery = _with_new_attempt(StoredDelivery.model_validate_json(str(raw)), claim.sender, now)
            pipe.hset(deliveries, delivery.id, delivery.model_dump_json())
            pipe.execute()
            return delivery

        while True:
            started = watched(self.redis, [deliveries, queue], step)
            if started is not False:
                return started if isinstance(started, StoredDelivery) else None

    def finish(self, claim: Claim, delivery_id: str, result: AttemptResult, retry_at: float | None) -> bool:
        """Record the answer to the attempt ``begin`` started, settle the delivery or schedule its
        retry at ``retry_at`` (None: give up), and let the claim go. False, recording nothing, when
        another sender has taken the delivery over."""
        job_id = claim.job_id
        deliveries, queue = self.keys.webhook_deliveries(job_id), self.keys.webhook_queue(job_id)

        def step(pipe: Pipeline) -> bool:
            raw = pipe.hget(deliveries, delivery_id)
            if raw is None:
                pipe.unwatch()
                return False
            delivery = StoredDelivery.model_validate_json(str(raw))
            if delivery.sender != claim.sender:
                pipe.unwatch()
                return False
            _record(delivery, result, retry_at)
            settled = delivery.outcome != "pending"
            left = int(pipe.llen(queue)) - (1 if settled else 0)
            ours = pipe.zscore(self.keys.webhooks_claimed(), job_id) == claim.expires_ms
            pipe.multi()
            pipe.hset(deliveries, delivery_id, delivery.model_dump_json())
            if settled:
                pipe.lpop(queue)
                pipe.hincrby(self.keys.webhook_counts(job_id), delivery.outcome, 1)
            if ours:  # else the claim expired and the job is due again, or in another's hands
                due_at = retry_at if not settled else (time.time() if left > 0 else None)
                self._release(pipe, claim, due_at)
            pipe.execute()
            return True

        return watched(self.redis, [deliveries, queue, self.keys.webhooks_claimed()], step)

    def _release(self, pipe: Pipeline, claim: Claim, due_at: float | None) -> None:
        pipe.zrem(self.keys.webhooks_claimed(), claim.job_id)
        if due_at is not None:
            self._make_due(pipe, claim.tenant, claim.job_id, _ms(due_at))

    def deliveries(self, job_id: str) -> list[StoredDelivery]:
        """The job's deliveries, oldest first."""
        raw = self.redis.hgetall(self.keys.webhook_deliveries(job_id))
        return sorted((StoredDelivery.model_validate_json(v) for v in raw.values()), key=lambda d: d.id)

    def summary(self, job: JobRecord) -> WebhookSummary | None:
        """The job's delivery counters, when its spec asks for webhooks."""
        notify = job.spec.notify
        return None if notify is None else WebhookSummary.of(notify.url, notify.events, self.counts(job.id))

    def counts(self, job_id: str) -> dict[str, int]:
        """The job's delivery counters: created, delivered, failed, dropped."""
        raw = self.redis.hgetall(self.keys.webhook_counts(job_id))
        return {name: int(raw.get(name, 0)) for name in ("created", "delivered", "failed", "dropped")}


def _with_new_attempt(delivery: StoredDelivery, sender: str, now: float) -> StoredDelivery:
    for attempt in delivery.attempts:
        if attempt.outcome == "sending":
            attempt.outcome, attempt.error = "lost", LOST_ERROR
    started = datetime.fromtimestamp(now, UTC)
    delivery.attempts.append(DeliveryAttempt(number=len(delivery.attempts) + 1, started_at=started))
    delivery.sender, delivery.next_attempt_at = sender, None
    return delivery


def _record(delivery: StoredDelivery, result: AttemptResult, retry_at: float | None) -> None:
    attempt = delivery.attempts[-1]
    attempt.outcome = "ok" if result.ok else "failed"
    attempt.status_code, attempt.error = result.status_code, result.error
    attempt.duration_ms = result.duration_ms
    delivery.sender = None
    if result.ok:
        delivery.outcome = "delivered"
    elif retry_at is None:
        delivery.outcome = "failed"
    else:
        delivery.next_attempt_at = datetime.fromtimestamp(retry_at, UTC)
