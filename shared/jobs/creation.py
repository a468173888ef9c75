"""A new job's checks and writes as one Redis script: the idempotency key, the tenant's quota of
active jobs, then the job's commands, atomically and in one round trip.

A WATCH transaction did the same, but every submission of a tenant changes the very indexes
that the tenant's other submissions watch, so concurrent submissions of one tenant aborted one
another and retried, each retry four more round trips: throughput fell as concurrency rose.
A script runs alone, so it needs neither the watch nor a retry.

The job's commands are the ones ``JobStore`` queues on a pipeline for any write (the record,
its indexes, counters and webhook events), taken from that pipeline without running it, so
they are written once, there.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from redis import Redis
from redis.client import Pipeline

# KEYS: the tenant's active-job indexes (ARGV[1] of them), then the idempotency key if any.
# ARGV: that count, the quota (-1 for none), then each command as its length and its words.
_SCRIPT = """
local indexes = tonumber(ARGV[1])
if #KEYS > indexes then
  local earlier = redis.call('GET', KEYS[indexes + 1])
  if earlier then return {'replay', earlier} end
end
local limit = tonumber(ARGV[2])
if limit >= 0 then
  local active = 0
  for i = 1, indexes do active = active + redis.call('ZCARD', KEYS[i]) end
  if active >= limit then return {'quota', tostring(active)} end
end
local i = 3
while i <= #ARGV do
  local length = tonumber(ARGV[i])
  redis.call(unpack(ARGV, i + 1, i + length))
  i = i + length + 1
end
return {'created'}
"""


@dataclass(frozen=True)
class Outcome:
    """What the script did: ``created``; ``replay`` with the remembered value; or ``quota``
    with the tenant's count of active jobs."""

    kind: str
    value: str | None = None


class GuardedCreate:
    """Runs a pipeline's queued commands only when the idempotency key is unused and the
    tenant is under its quota."""

    def __init__(self, redis: Redis) -> None:
        self.script = redis.register_script(_SCRIPT)

    def __call__(
        self, writes: Pipeline, active: Sequence[str], max_active: int | None, remembered: str | None
    ) -> Outcome:
        words: list[Any] = [len(active), -1 if max_active is None else max_active]
        # A pipeline keeps what it queued as (arguments, options); only the arguments are sent.
        for arguments, _ in writes.command_stack:
            words += [len(arguments), *arguments]
        keys = [*active, *([remembered] if remembered else [])]
        kind, *value = self.script(keys=keys, args=words)
        return Outcome(str(kind), str(value[0]) if value else None)
