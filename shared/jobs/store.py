"""JobStore: the only code that reads or writes job keys in Redis.

What each change writes is described in ``shared.jobs.changes``; the store decides how it is
sent: new jobs by a script that checks their guards (``shared.jobs.creation``), every other
change in a WATCH transaction fenced by the job's attempt and status.
"""

import json
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from typing import Any, TypeVar, cast

from redis import Redis
from redis.client import Pipeline

from shared.errors import Conflict, InvalidTransition, JobNotFound, StaleAttempt, TooManyRequests
from shared.jobs import changes
from shared.jobs.creation import ACTIVE_OR_QUEUED, GuardedWrites, Guards, Idempotency
from shared.models.jobs import (
    ACTIVE_STATUSES,
    NEXT_STATUSES,
    BestEpoch,
    CheckpointRef,
    EpochRecord,
    JobRecord,
    JobStatus,
    Progress,
    utc_now,
)
from shared.redis.clock import redis_seconds
from shared.redis.codec import decode, strings
from shared.redis.connection import connect
from shared.redis.keys import RedisKeys
from shared.redis.scripts import CLAIM_DUE
from shared.redis.watch import watched
from shared.redis.writes import Writes
from shared.settings import Settings
from shared.webhooks import outbox

T = TypeVar("T")
_EPOCH_FIELDS = ("attempt", "status", "progress", "tenant", "spec")
"""What ``append_epoch`` reads: the fence, the progress, and where to deliver the epoch."""


class JobStore:
    """Jobs, their transitions and epoch records, and the indexes the job list reads."""

    def __init__(
        self,
        redis: Redis,
        keys: RedisKeys,
        retention_seconds: int = 30 * 24 * 3600,
        dispatch_seconds: float = 300.0,
    ) -> None:
        self.redis = redis
        self.keys = keys
        self.retention_seconds = retention_seconds
        self.dispatch_seconds = dispatch_seconds
        """A queued job's dispatch deadline: its message is sent again when no worker took it by then."""
        self._guarded = GuardedWrites(redis, keys)

    @classmethod
    def from_settings(cls, settings: Settings) -> "JobStore":
        """A store on the Redis and key prefix the settings name."""
        return cls(
            connect(settings),
            RedisKeys(settings.key_prefix),
            settings.retention_seconds,
            settings.dispatch_deadline_seconds,
        )

    def create(
        self, record: JobRecord, *, max_active: int | None = None, idempotency: Idempotency | None = None
    ) -> tuple[JobRecord, bool]:
        """Store a new job with its first transition and add it to the list indexes, atomically
        with its checks. Returns the job and whether it is new.

        With ``max_active``, a tenant with that many queued or running jobs gets
        ``TooManyRequests``. With ``idempotency``, a key already used for the same request
        returns the job it created, and one used for another request is a ``Conflict``.
        """
        writes = changes.creation(self.keys, record, self.dispatch_seconds)
        remembered = self.keys.idempotency(record.tenant, idempotency.key) if idempotency else None
        if remembered and idempotency:
            memo = json.dumps({"job_id": record.id, "body": idempotency.body_hash})
            writes.set(remembered, memo, expire_seconds=idempotency.ttl_seconds)
        outcome = self._guarded(writes, Guards(record.tenant, 1, max_active, remembered))
        if outcome.kind == "replay" and idempotency and outcome.value is not None:
            return self._replay(json.loads(outcome.value), idempotency), False
        self._check_quota(outcome.kind, outcome.value, 1, max_active)
        return record, True

    def create_together(
        self,
        tenant: str,
        records: Sequence[JobRecord],
        also: Writes,
        max_active: int | None = None,
        held: Collection[str] = (),
    ) -> None:
        """Store several new jobs of ``tenant`` and ``also`` (what groups them), all or none:
        ``TooManyRequests`` when they would take the tenant past ``max_active`` active jobs.
        The ``held`` jobs are not to be sent yet: they get no dispatch deadline."""
        writes = Writes()
        for record in records:
            deadline = None if record.id in held else self.dispatch_seconds
            writes.extend(changes.creation(self.keys, record, deadline))
        writes.extend(also)
        outcome = self._guarded(writes, Guards(tenant, len(records), max_active))
        self._check_quota(outcome.kind, outcome.value, len(records), max_active)

    @staticmethod
    def _check_quota(kind: str, active: str | None, adding: int, max_active: int | None) -> None:
        if kind == "quota":
            message = f"the tenant has {active} queued or running jobs; the limit is {max_active}"
            more = "" if adding == 1 else f", which {adding} more would pass"
            raise TooManyRequests(message + more, retry_after=30)

    def _replay(self, memo: dict[str, str], idempotency: Idempotency) -> JobRecord:
        if memo["body"] != idempotency.body_hash:
            raise Conflict(
                f"Idempotency-Key {idempotency.key!r} was used for a different request (job {memo['job_id']})"
            )
        return self.get(memo["job_id"])

    def active_count(self, tenant: str) -> int:
        """The tenant's queued and running jobs, as its quota counts them."""
        pipe = self.redis.pipeline(transaction=False)
        for status in ACTIVE_OR_QUEUED:
            pipe.zcard(self.keys.status_index(tenant, status.value))
        return sum(int(count) for count in pipe.execute())

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
        writes after ``pipe.multi()``. A concurrent write to the job (or to ``also_watch``)
        makes it start over with what changed."""
        return watched(
            self.redis,
            [self.keys.job(job_id), *also_watch],
            lambda pipe: step(pipe, self._load(pipe, job_id)),
        )

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
        """On a watching ``pipe``: write a status change (``changes.transition``) and return the
        job as it became. A lease is counted from Redis's clock."""
        lease_from = redis_seconds(pipe) if lease_seconds is not None else None
        record, writes = changes.transition(
            self.keys,
            current,
            to,
            attempt,
            reason,
            fields,
            lease_seconds=lease_seconds,
            retention_seconds=self.retention_seconds,
            lease_from=lease_from,
        )
        run(pipe, writes)
        return record

    def last_checkpoint(self, client: Redis | Pipeline, record: JobRecord) -> CheckpointRef | None:
        """The checkpoint committed with the job's last epoch record (read on ``client``, a
        watching pipeline inside a transaction); None before any epoch."""
        epoch = record.progress.epoch
        raw = client.lindex(self.keys.epochs(record.id), epoch - 1) if epoch else None
        if raw is None:
            return None
        return CheckpointRef(attempt=EpochRecord.model_validate_json(str(raw)).attempt, epoch=epoch)

    def request_preemption(self, job_id: str, by: str) -> bool:
        """Ask a running job to stop at its next epoch end for the waiting job ``by``; whether it
        was asked (not when it no longer runs, or was asked already)."""

        def step(pipe: Pipeline, current: JobRecord) -> bool:
            if current.status is not JobStatus.RUNNING or current.preempt_by is not None:
                pipe.unwatch()
                return False
            pipe.multi()
            pipe.hset(self.keys.job(job_id), "preempt_by", json.dumps(by))
            pipe.execute()
            return True

        return self.transact(job_id, step)

    def preemption_asked(self, job_id: str) -> str | None:
        """The job a running job was asked to stop for, if it was."""
        raw = self.redis.hget(self.keys.job(job_id), "preempt_by")
        return None if raw is None else cast(str | None, json.loads(str(raw)))

    def mark_model(self, job_id: str) -> None:
        """The model of an ended job is in the store now (copied from its last checkpoint);
        ``JobNotFound`` for a job deleted meanwhile (whose hash is not made again)."""

        def step(pipe: Pipeline, current: JobRecord) -> None:
            pipe.multi()
            pipe.hset(self.keys.job(job_id), "has_model", json.dumps(True))
            pipe.execute()

        self.transact(job_id, step)

    def append_epoch(self, job_id: str, record: EpochRecord, best: BestEpoch | None) -> bool:
        """Add the record of epoch ``record.epoch``, fenced by its attempt.

        Returns False when that epoch is already recorded (a retried write), so every epoch is
        stored exactly once; an epoch past the next one is refused with ``StaleAttempt``.
        """
        epochs = self.keys.epochs(job_id)

        def step(pipe: Pipeline) -> bool:
            current = self._read_fields(pipe, job_id, *_EPOCH_FIELDS)
            check_fence_fields(job_id, current["attempt"], JobStatus(current["status"]), record.attempt)
            recorded = int(pipe.llen(epochs))
            if recorded >= record.epoch:
                pipe.unwatch()
                return False
            if recorded != record.epoch - 1:
                # Redis lost writes (a restart without them): this attempt's view is no longer
                # the job's; it stops, and the next attempt resumes from what was kept.
                raise StaleAttempt(f"job {job_id}: epoch {record.epoch} follows only {recorded} recorded")
            progress = Progress(epoch=record.epoch, epochs=current["progress"]["epochs"])
            updates = {"progress": progress.model_dump(), "updated_at": utc_now().isoformat()}
            if best is not None:
                updates["best"] = best.model_dump()
            notice = outbox.plan_epoch_event(pipe, self.keys, job_id, current["spec"].get("notify"))
            run(pipe, changes.epoch(self.keys, job_id, current["tenant"], record, updates, notice))
            return True

        return watched(self.redis, [self.keys.job(job_id), epochs], step)

    def epoch_records_json(self, job_id: str, after_epoch: int, limit: int) -> list[str]:
        """The stored JSON of epochs ``after_epoch + 1`` onwards, at most ``limit`` of them."""
        return strings(self.redis.lrange(self.keys.epochs(job_id), after_epoch, after_epoch + limit - 1))

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

    def ids_before(self, index: str, cursor: str | None, limit: int) -> list[str]:
        """Up to ``limit`` job ids of a list index, newest first, older than ``cursor`` (an id)."""
        upper = f"({cursor}" if cursor else "+"
        return strings(self.redis.zrevrangebylex(index, upper, "-", start=0, num=limit))

    def ids_in(self, index: str) -> list[str]:
        """Every job id of a list index."""
        return strings(self.redis.zrange(index, 0, -1))

    def _read_fields(self, pipe: Pipeline, job_id: str, *names: str) -> dict[str, Any]:
        values = pipe.hmget(self.keys.job(job_id), list(names))
        if values[0] is None:
            raise JobNotFound(job_id)
        return {name: json.loads(str(value)) for name, value in zip(names, values, strict=True)}

    def finished_before(self, cutoff: float, limit: int = 100) -> list[str]:
        """Ids of jobs that finished before ``cutoff`` (a Unix time), oldest first."""
        return strings(
            self.redis.zrangebyscore(
                self.keys.finished(), "-inf", changes.epoch_ms(cutoff), start=0, num=limit
            )
        )

    def claim_endings(self, limit: int, hold_seconds: float) -> list[str]:
        """Ids of ended jobs whose follow-ups are due, held for ``hold_seconds`` by the caller."""
        return strings(CLAIM_DUE.run(self.redis, [self.keys.endings()], [limit, int(hold_seconds * 1000)]))

    def ending_settled(self, job_id: str) -> None:
        """The job's follow-ups are done: it leaves the endings outbox."""
        self.redis.zrem(self.keys.endings(), job_id)

    def purge(self, job_id: str) -> None:
        """Delete a job: its keys and its entries in every index.

        Watched, so that of two workers sweeping the same job only one uncounts it.
        """

        def step(pipe: Pipeline) -> None:
            try:
                record: JobRecord | None = self._load(pipe, job_id)
            except JobNotFound:
                record = None
            run(pipe, changes.deletion(self.keys, job_id, record))

        watched(self.redis, [self.keys.job(job_id)], step)


def run(pipe: Pipeline, writes: Writes) -> None:
    """Send ``writes`` as the transaction of a watching ``pipe``."""
    pipe.multi()
    writes.queue_on(pipe)
    pipe.execute()


def check_fence(current: JobRecord, attempt: int | None) -> None:
    """Refuse a write of ``attempt`` once the job has another attempt, or is no longer running."""
    check_fence_fields(current.id, current.attempt, current.status, attempt)


def check_fence_fields(job_id: str, current: int, status: JobStatus, attempt: int | None) -> None:
    """``check_fence`` on the two fields it reads."""
    if attempt is not None and (current != attempt or status not in ACTIVE_STATUSES):
        raise StaleAttempt(
            f"job {job_id}: attempt {attempt} no longer runs it (attempt {current}, {status.value})"
        )
