"""New jobs written atomically with their checks, in one Redis script: the idempotency key, the
tenant's quota of active jobs, then the jobs' writes (``shared.redis.scripts.GUARDED_WRITES``).

A WATCH transaction did the same, but every submission of a tenant changes the very indexes
that the tenant's other submissions watch, so concurrent submissions of one tenant aborted one
another and retried, each retry four more round trips: throughput fell as concurrency rose.
A script runs alone, so it needs neither the watch nor a retry, and a study's jobs are
created together or not at all, against the quota they take together.
"""

from dataclasses import dataclass

from redis import Redis

from shared.models.jobs import ACTIVE_STATUSES, JobStatus
from shared.redis.keys import RedisKeys
from shared.redis.scripts import GUARDED_WRITES
from shared.redis.writes import Writes

ACTIVE_OR_QUEUED = (JobStatus.QUEUED, *sorted(ACTIVE_STATUSES))
"""The statuses a tenant's quota of active jobs counts."""


@dataclass(frozen=True)
class Idempotency:
    """An ``Idempotency-Key``, the hash of the request it came with, and how long to keep it."""

    key: str
    body_hash: str
    ttl_seconds: int


@dataclass(frozen=True)
class Guards:
    """What must hold for writes to run: the tenant stays within ``max_active`` (None: no
    quota) with ``adding`` more jobs, and the key ``remembered`` (if any) is unused."""

    tenant: str
    adding: int
    max_active: int | None = None
    remembered: str | None = None


@dataclass(frozen=True)
class Outcome:
    """What the script did: ``written``; ``replay`` with the remembered value; or ``quota``
    with the tenant's count of active jobs."""

    kind: str
    value: str | None = None


class GuardedWrites:
    """Runs writes only when their guards pass, atomically."""

    def __init__(self, redis: Redis, keys: RedisKeys) -> None:
        self.redis, self.keys = redis, keys

    def __call__(self, writes: Writes, guards: Guards) -> Outcome:
        active = [self.keys.status_index(guards.tenant, status.value) for status in ACTIVE_OR_QUEUED]
        remembered = [guards.remembered] if guards.remembered else []
        keys = list(dict.fromkeys([*active, *remembered, *writes.keys()]))
        numbers = {key: number for number, key in enumerate(keys, start=1)}
        quota = -1 if guards.max_active is None else guards.max_active
        head = [len(active), "1" if remembered else "0", quota, guards.adding]
        kind, *value = GUARDED_WRITES.run(self.redis, keys, [*head, *writes.script_words(numbers)])
        return Outcome(str(kind), str(value[0]) if value else None)
