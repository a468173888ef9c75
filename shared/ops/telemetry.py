"""Service-wide counters for operators, kept in Redis beside the jobs they count.

Every API process and every worker writes them in the same transaction as the job write they
count, so they hold across processes and restarts, and a scrape of any API process sees the
whole deployment. They are read by ``GET /metrics`` (``api.routes.prometheus``).
"""

from dataclasses import dataclass
from typing import Any

from redis import Redis

from shared.models.jobs import JobStatus
from shared.redis.codec import strings
from shared.redis.keys import RedisKeys
from shared.redis.writes import Writes

# Upper bounds (seconds) of the epoch duration histogram: from tiny test epochs to an epoch
# of a large model on the CPU.
EPOCH_SECONDS_BUCKETS: tuple[float, ...] = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)

_STATUS = "jobs:"
_SUBMITTED = "submitted"
_FINISHED = "finished:"
_EPOCH_BUCKET = "epoch_seconds:le:"
_EPOCH_SUM = "epoch_seconds:sum"
_EPOCH_COUNT = "epoch_seconds:count"


def count_created(writes: Writes, keys: RedisKeys, status: JobStatus) -> None:
    """Count a newly submitted job, in the writes that create it."""
    writes.hincrby(keys.telemetry(), _SUBMITTED, 1)
    writes.hincrby(keys.telemetry(), _STATUS + status.value, 1)


def count_transition(writes: Writes, keys: RedisKeys, before: JobStatus, after: JobStatus) -> None:
    """Count of a status change; a terminal one is a finished job of that outcome."""
    writes.hincrby(keys.telemetry(), _STATUS + before.value, -1)
    writes.hincrby(keys.telemetry(), _STATUS + after.value, 1)
    if after.is_terminal():
        writes.hincrby(keys.telemetry(), _FINISHED + after.value, 1)


def count_purged(writes: Writes, keys: RedisKeys, status: JobStatus) -> None:
    """Uncount of a deleted job from the jobs by status (the totals keep it)."""
    writes.hincrby(keys.telemetry(), _STATUS + status.value, -1)


def observe_epoch(writes: Writes, keys: RedisKeys, seconds: float) -> None:
    """Record one epoch's duration in the histogram."""
    bound = next((b for b in EPOCH_SECONDS_BUCKETS if seconds <= b), None)
    if bound is not None:
        writes.hincrby(keys.telemetry(), f"{_EPOCH_BUCKET}{bound:g}", 1)
    writes.hincrbyfloat(keys.telemetry(), _EPOCH_SUM, seconds)
    writes.hincrby(keys.telemetry(), _EPOCH_COUNT, 1)


@dataclass(frozen=True)
class Telemetry:
    """The counters as read at one moment."""

    jobs_by_status: dict[str, int]
    submitted: int
    finished_by_outcome: dict[str, int]
    # Cumulative counts per upper bound, as Prometheus histograms are.
    epoch_buckets: list[tuple[float, int]]
    epoch_seconds_sum: float
    epoch_count: int

    @classmethod
    def read(cls, redis: Redis, keys: RedisKeys) -> "Telemetry":
        """One read of the counters (a single HGETALL)."""
        raw: Any = redis.hgetall(keys.telemetry())
        fields = dict(zip(strings(raw.keys()), strings(raw.values()), strict=True))
        cumulative, buckets = 0, []
        for bound in EPOCH_SECONDS_BUCKETS:
            cumulative += int(fields.get(f"{_EPOCH_BUCKET}{bound:g}", 0))
            buckets.append((bound, cumulative))
        terminal = [status for status in JobStatus if status.is_terminal()]
        return cls(
            jobs_by_status={
                status.value: max(0, int(fields.get(_STATUS + status.value, 0))) for status in JobStatus
            },
            submitted=int(fields.get(_SUBMITTED, 0)),
            finished_by_outcome={
                status.value: int(fields.get(_FINISHED + status.value, 0)) for status in terminal
            },
            epoch_buckets=buckets,
            epoch_seconds_sum=float(fields.get(_EPOCH_SUM, 0.0)),
            epoch_count=int(fields.get(_EPOCH_COUNT, 0)),
        )
