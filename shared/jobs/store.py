"""JobStore: the only code that reads or writes job keys in Redis."""

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from redis import Redis
from redis.client import Pipeline
from redis.exceptions import WatchError

from shared.errors import Conflict, InvalidTransition, JobNotFound, StaleAttempt, TooManyRequests
from shared.jobs.creation import GuardedCreate
from shared.models.jobs import (
    ACTIVE_STATUSES,
    NEXT_STATUSES,
    BestEpoch,
    EpochRecord,
    JobRecord,
    JobStatus,
    Progress,
    Transition,
    utc_now,
)
from shared.ops import telemetry
from shared.redis.codec import connect, decode, hset_json, strings
from shared.redis.keys import RedisKeys
from shared.settings import Settings
from shared.webhooks import outbox

T = TypeVar("T")
ACTIVE_OR_QUEUED = (JobStatus.QUEUED, *sorted(ACTIVE_STATUSES))
_EPOCH_FIELDS = ("attempt", "status", "progress", "tenant", "spec")
"""What ``append_epoch`` reads: the fence, the progress, and where to deliver the epoch."""


@dataclass(frozen=True)
class Idempotency:
    """An ``Idempotency-Key``, the hash of the request it came with, and how long to keep it."""

    key: str
    body_hash: str
    ttl_seconds: int


class JobStore:
    """Jobs, their transitions and epoch records, and the indexes the job list reads."""

    def __init__(self, redis: Redis, keys: RedisKeys, retention_seconds: int = 30 * 24 * 3600) -> None:
        self.redis = redis
        self.keys = keys
        self.retention_seconds = retention_seconds
        self._guarded_create = GuardedCreate(redis)

    @classmethod
    def from_settings(cls, settings: Settings) -> "JobStore":
        """A store on the Redis and key prefix the settings name."""
        return cls(connect(settings), RedisKeys(settings.key_prefix), settings.retention_seconds)

    def create(
        self, record: JobRecord, *, max_active: int | None = None, idempotency: Idempotency | None = None
    ) -> tuple[JobRecord, bool]:
        """Store a new job with its first transition and add it to the list indexes, atomically
        with its checks. Returns the job and whether it is new.

        With ``max_active``, a tenant with that many queued or running jobs gets
        ``TooManyRequests``. With ``idempotency``, a key already used for the same request
        returns the job it created, and one used for another request is a ``Conflict``.
        """
        active = [self.keys.status_index(record.tenant, status.value) for status in ACTIVE_OR_QUEUED]
        remembered = self.keys.idempotency(record.tenant, idempotency.key) if idempotency else None
        writes = self.redis.pipeline(transaction=False)  # queued only: the script runs them
        self._write_new(writes, record)
        if remembered and idempotency:
            memo = json.dumps({"job_id": record.id, "body": idempotency.body_hash})
            writes.set(remembered, memo, ex=idempotency.ttl_seconds)
        outcome = self._guarded_create(writes, active, max_active, remembered)
        if outcome.kind == "replay" and idempotency and outcome.value is not None:
            return self._replay(json.loads(outcome.value), idempotency), False
        if outcome.kind == "quota":
            message = f"the tenant has {outcome.value} queued or running jobs; the limit is {max_active}"
            raise TooManyRequests(message, retry_after=30)
        return record, True

    def _write_new(self, pipe: Pipeline, record: JobRecord) -> None:
        hset_json(pipe, self.keys.job(record.id), record.model_dump(mode="json", exclude={"transitions"}))
        for transition in record.transitions:
            pipe.rpush(self.keys.transitions(record.id), transition.model_dump_json())
        for index in self._indexes(record):
            pipe.zadd(index, {record.id: 0})
        telemetry.count_created(pipe, self.keys, record.status)
        outbox.state_event(pipe, self.keys, record, record.transitions[-1])

    def active_count(self, tenant: str) -> int:
        """The tenant's queued and running jobs."""
        pipe = self.redis.pipeline(transaction=False)
        for status in ACTIVE_OR_QUEUED:
            pipe.zcard(self.keys.status_index(tenant, status.value))
        return sum(int(count) for count in pipe.execute())

    def _replay(self, memo: dict[str, str], idempotency: Idempotency) -> JobRecord:
        if memo["body"] != idempotency.body_hash:
            raise Conflict(
                f"Idempotency-Key {idempotency.key!r} was used for a different request (job {memo['job_id']})"
            )
        return self.get(memo["job_id"])

    def get(self, job_id: str) -> JobRecord:
        """The job with its transitions; ``JobNotFound`` when there is none."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.hgetall(self.keys.job(job_id))
        pipe.lrange(self.keys.transitions(job_id), 0, -1)
        raw, transitions = pipe.execute()
        return self._parse(job_id, raw, transitions)

    def _load(self, pipe: Pipeline, job_id: str) -> JobRecord:
        # Reads on a watching pipeline run at once: the record as the transaction will see it.
        return self._parse(
            job_id, pipe.hgetall(self.keys.job(job_id)), pipe.lrange(self.keys.transitions(job_id), 0, -1)
        )

    @staticmethod
    def _parse(job_id: str, raw: Any, transitions: Any) -> JobRecord:
        if not raw:
            raise JobNotFound(job_id)
        return JobRecord.model_validate({**decode(raw), "transitions": [json.loads(t) for t in transitions]})

    def status(self, job_id: str) -> JobStatus:
        """Just the job's status: one small read, cheap enough to ask during training."""
        raw = self.redis.hget(self.keys.job(job_id), "status")
        if raw is None:
            raise JobNotFound(job_id)
        return JobStatus(json.loads(raw))

    def change_status(
        self,
        job_id: str,
        to: JobStatus,
        *,
        reason: str | None = None,
        attempt: int | None = None,
        new_attempt: bool = False,
        fields: Mapping[str, Any] | None = None,
    ) -> JobRecord:
        """Move the job to ``to`` atomically, with a transition, and set ``fields`` (JSON-ready).

        ``attempt`` fences the write: it is refused with ``StaleAttempt`` unless that attempt is
        still the job's current one and still running. ``new_attempt`` starts the next attempt.
        A change the current status does not allow raises ``InvalidTransition``.
        """

        def step(pipe: Pipeline, current: JobRecord) -> JobRecord:
            check_fence(current, attempt)
            if to not in NEXT_STATUSES[current.status]:
                raise InvalidTransition(f"job {job_id} is {current.status.value}, not {to.value}-able")
            number = current.attempt + (1 if new_attempt else 0)
            return self.write_transition(pipe, current, to, number, reason, fields or {})

        return self.transact(job_id, step)

    def transact(self, job_id: str, step: Callable[[Pipeline, JobRecord], T], *also_watch: str) -> T:
        """Run ``step`` on the job as it is now, atomically: it reads through the pipeline, then
        queues its writes after ``pipe.multi()``. A concurrent write to the job (or to
        ``also_watch``) makes it start over with what changed."""
        with self.redis.pipeline(transaction=True) as pipe:
            while True:
                try:
                    pipe.watch(self.keys.job(job_id), *also_watch)  # type: ignore[no-untyped-call]
                    return step(pipe, self._load(pipe, job_id))
                except WatchError:
                    continue

    def append_epoch(self, job_id: str, record: EpochRecord, best: BestEpoch | None) -> bool:
        """Add the record of epoch ``record.epoch``, fenced by its attempt.

        Returns False when that epoch is already recorded (a retried write), so every epoch is
        stored exactly once; an epoch past the next one is refused with ``StaleAttempt``.
        """
        key, epochs = self.keys.job(job_id), self.keys.epochs(job_id)
        with self.redis.pipeline(transaction=True) as pipe:
            while True:
                try:
                    pipe.watch(key, epochs)  # type: ignore[no-untyped-call]
                    current = self._read_fields(pipe, job_id, *_EPOCH_FIELDS)
                    check_fence_fields(
                        job_id, current["attempt"], JobStatus(current["status"]), record.attempt
                    )
                    recorded = int(pipe.llen(epochs))
                    if recorded >= record.epoch:
                        return False
                    if recorded != record.epoch - 1:
                        # Redis lost writes (a restart without them): this attempt's view is no longer
                        # the job's; it stops, and the next attempt resumes from what was kept.
                        raise StaleAttempt(
                            f"job {job_id}: epoch {record.epoch} follows only {recorded} recorded"
                        )
                    progress = Progress(epoch=record.epoch, epochs=current["progress"]["epochs"])
                    updates = {"progress": progress.model_dump(), "updated_at": utc_now().isoformat()}
                    if best is not None:
                        updates["best"] = best.model_dump()
                    notify = current["spec"].get("notify")
                    notice = outbox.plan_epoch_event(pipe, self.keys, job_id, notify)
                    pipe.multi()
                    pipe.rpush(epochs, record.model_dump_json())
                    pipe.publish(self.keys.job_events(job_id), "epoch")
                    hset_json(pipe, key, updates)
                    telemetry.observe_epoch(pipe, self.keys, record.epoch_seconds)
                    outbox.epoch_event(pipe, self.keys, notice, job_id, current["tenant"], record)
                    pipe.execute()
                    return True
                except WatchError:
                    continue

    def epoch_records_json(self, job_id: str, after_epoch: int, limit: int) -> list[str]:
        """The stored JSON of epochs ``after_epoch + 1`` onwards, at most ``limit`` of them."""
        return strings(self.redis.lrange(self.keys.epochs(job_id), after_epoch, after_epoch + limit - 1))

    def metrics_page(
        self, job_id: str, after_epoch: int, limit: int
    ) -> tuple[str, JobStatus, list[str], int]:
        """In one round trip: the job's tenant and status, its stored JSON records after
        ``after_epoch`` (at most ``limit``), and how many epochs are recorded in all.

        Parses nothing but two short fields, so a poll that finds nothing new stays cheap.
        """
        pipe = self.redis.pipeline(transaction=False)
        pipe.hmget(self.keys.job(job_id), ["tenant", "status"])
        pipe.lrange(self.keys.epochs(job_id), after_epoch, after_epoch + limit - 1)
        pipe.llen(self.keys.epochs(job_id))
        (tenant, status), records, total = pipe.execute()
        if tenant is None:
            raise JobNotFound(job_id)
        return json.loads(tenant), JobStatus(json.loads(status)), strings(records), int(total)

    def epoch_records(self, job_id: str, after_epoch: int = 0, limit: int = 100_000) -> list[EpochRecord]:
        """Parsed epoch records after ``after_epoch``."""
        raw = self.epoch_records_json(job_id, after_epoch, limit)
        return [EpochRecord.model_validate_json(item) for item in raw]

    def get_many(self, job_ids: Iterable[str]) -> list[JobRecord | None]:
        """The jobs of ``job_ids`` (without transitions), None for those that do not exist."""
        pipe = self.redis.pipeline(transaction=False)
        for job_id in job_ids:
            pipe.hgetall(self.keys.job(job_id))
        return [JobRecord.model_validate(decode(raw)) if raw else None for raw in pipe.execute()]

    def _indexes(self, record: JobRecord) -> list[str]:
        tenant = record.tenant
        tag_indexes = [self.keys.tag_index(tenant, k, v) for k, v in record.spec.tags.items()]
        return [
            self.keys.jobs_index(tenant),
            self.keys.status_index(tenant, record.status.value),
            *tag_indexes,
        ]

    def _read_fields(self, pipe: Pipeline, job_id: str, *names: str) -> dict[str, Any]:
        values = pipe.hmget(self.keys.job(job_id), list(names))
        if values[0] is None:
            raise JobNotFound(job_id)
        return {name: json.loads(str(value)) for name, value in zip(names, values, strict=True)}

    def write_transition(
        self,
        pipe: Pipeline,
        current: JobRecord,
        to: JobStatus,
        attempt: int,
        reason: str | None,
        fields: Mapping[str, Any],
        lease_seconds: float | None = None,
    ) -> JobRecord:
        """Queue, after ``pipe.multi()``, the writes of a status change, and return the new record.

        With ``lease_seconds`` the job's lease runs until then (a running attempt's, or a
        requeued job's deadline to be picked up); a finished job is scheduled for deletion after
        the retention time.
        """
        now = utc_now()
        updates: dict[str, Any] = {"status": to.value, "attempt": attempt, "updated_at": now.isoformat()}
        if to is JobStatus.RUNNING:
            updates["started_at"] = now.isoformat()
        if to.is_terminal():
            updates["finished_at"] = now.isoformat()
        updates.update(fields)
        transition = Transition(status=to, at=now, attempt=attempt, reason=reason)
        written = {**current.model_dump(mode="json"), **updates}
        written["transitions"].append(transition.model_dump(mode="json"))
        record = JobRecord.model_validate(written)
        pipe.multi()
        hset_json(pipe, self.keys.job(current.id), updates)
        pipe.rpush(self.keys.transitions(current.id), transition.model_dump_json())
        pipe.publish(self.keys.job_events(current.id), "state")
        pipe.zrem(self.keys.status_index(current.tenant, current.status.value), current.id)
        pipe.zadd(self.keys.status_index(current.tenant, to.value), {current.id: 0})
        telemetry.count_transition(pipe, self.keys, current.status, to)
        outbox.state_event(pipe, self.keys, record, transition)
        if lease_seconds is not None:
            pipe.zadd(self.keys.leases(), {current.id: epoch_ms(now.timestamp() + lease_seconds)})
        elif to is JobStatus.QUEUED or to.is_terminal():
            pipe.zrem(self.keys.leases(), current.id)
        if to.is_terminal():
            self._schedule_deletion(pipe, current.id, now.timestamp())
        pipe.execute()
        return record

    def _schedule_deletion(self, pipe: Pipeline, job_id: str, finished: float) -> None:
        # The retention sweep deletes the job and its files; expiry is the safety net, a day later.
        pipe.zadd(self.keys.finished(), {job_id: epoch_ms(finished)})
        job_keys = (self.keys.job(job_id), self.keys.transitions(job_id), self.keys.epochs(job_id))
        for key in (*job_keys, *outbox.job_webhook_keys(self.keys, job_id)):
            pipe.expire(key, self.retention_seconds + 86_400)

    def finished_before(self, cutoff: float, limit: int = 100) -> list[str]:
        """Ids of jobs that finished before ``cutoff`` (a Unix time), oldest first."""
        return strings(
            self.redis.zrangebyscore(self.keys.finished(), "-inf", epoch_ms(cutoff), start=0, num=limit)
        )

    def purge(self, job_id: str) -> None:
        """Delete a job: its keys and its entries in every index.

        Watched, so that of two workers sweeping the same job only one uncounts it.
        """
        with self.redis.pipeline(transaction=True) as pipe:
            while True:
                try:
                    pipe.watch(self.keys.job(job_id))  # type: ignore[no-untyped-call]
                    try:
                        record: JobRecord | None = self._load(pipe, job_id)
                    except JobNotFound:
                        record = None
                    pipe.multi()
                    pipe.delete(
                        self.keys.job(job_id), self.keys.transitions(job_id), self.keys.epochs(job_id)
                    )
                    if record:
                        for index in self._indexes(record):
                            pipe.zrem(index, job_id)
                        telemetry.count_purged(pipe, self.keys, record.status)
                    pipe.zrem(self.keys.finished(), job_id)
                    pipe.zrem(self.keys.leases(), job_id)
                    outbox.forget_job(pipe, self.keys, job_id)
                    pipe.execute()
                    return
                except WatchError:
                    continue


def check_fence(current: JobRecord, attempt: int | None) -> None:
    """Refuse a write of ``attempt`` once the job has another attempt, or is no longer running."""
    check_fence_fields(current.id, current.attempt, current.status, attempt)


def check_fence_fields(job_id: str, current: int, status: JobStatus, attempt: int | None) -> None:
    """``check_fence`` on the two fields it reads."""
    if attempt is not None and (current != attempt or status not in ACTIVE_STATUSES):
        raise StaleAttempt(
            f"job {job_id}: attempt {attempt} no longer runs it (attempt {current}, {status.value})"
        )


def epoch_ms(seconds: float) -> int:
    """A Unix time in whole milliseconds, the scores of the time-ordered sets."""
    return int(seconds * 1000)
