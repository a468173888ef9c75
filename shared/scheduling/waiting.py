"""What a job's changes write to the scheduler's sets (``shared.jobs.changes`` adds them to the
change itself), and the making sure that a queued job reaches a worker."""

from redis import Redis

from shared.models.jobs import JobRecord, JobStatus
from shared.redis.keys import RedisKeys
from shared.redis.scripts import ENSURE_DISPATCH
from shared.redis.writes import Writes


def created_ms(record: JobRecord) -> int:
    """The job's place among its tenant's waiting jobs: its creation, so that a job requeued or
    preempted goes ahead of its tenant's newer ones."""
    return int(record.created_at.timestamp() * 1000)


def enqueue(keys: RedisKeys, record: JobRecord) -> Writes:
    """The job waits for its turn (its tenant joins the turns, keeping its pass if it is there)."""
    priority = record.spec.resources.priority
    writes = Writes()
    waiting = keys.waiting(record.queue, priority, record.tenant)
    writes.zadd(waiting, {record.id: created_ms(record)}, only_new=True)
    if record.spec.resources.gpu_memory_mb is not None:
        writes.hset(keys.needs(record.queue), {record.id: str(record.spec.resources.gpu_memory_mb)})
    writes.zadd(keys.turns(record.queue, priority), {record.tenant: 0}, only_new=True)
    writes.rpush(keys.dispatch_wake(), "1")
    return writes


def on_transition(keys: RedisKeys, record: JobRecord, to: JobStatus) -> Writes:
    """What a status change of ``record`` writes to the scheduler: a job that starts holds a slot
    (whether or not it was released: a message sent again before the scheduler existed, say); one
    requeued or preempted gives its slot back and waits again; one that ends leaves every set."""
    priority = record.spec.resources.priority
    released = (keys.released(record.queue), keys.released_at(record.queue, priority))
    waiting = keys.waiting(record.queue, priority, record.tenant)
    writes = Writes()
    if to is JobStatus.RUNNING:
        writes.zrem(waiting, record.id)
        for key in released:
            writes.zadd(key, {record.id: created_ms(record)}, only_new=True)
    elif to is JobStatus.QUEUED:
        for key in released:
            writes.zrem(key, record.id)
        writes.hdel(keys.bound(record.queue), record.id)
        writes.extend(enqueue(keys, record))
    elif to.is_terminal():
        for key in released:
            writes.zrem(key, record.id)
        writes.zrem(waiting, record.id)
        writes.hdel(keys.bound(record.queue), record.id)
        writes.hdel(keys.needs(record.queue), record.id)
        writes.rpush(keys.dispatch_wake(), "1")
    return writes


def forget(keys: RedisKeys, record: JobRecord) -> Writes:
    """A job deleted leaves the scheduler's sets."""
    priority = record.spec.resources.priority
    writes = Writes()
    writes.zrem(keys.released(record.queue), record.id)
    writes.zrem(keys.released_at(record.queue, priority), record.id)
    writes.zrem(keys.waiting(record.queue, priority, record.tenant), record.id)
    writes.hdel(keys.bound(record.queue), record.id)
    writes.hdel(keys.needs(record.queue), record.id)
    return writes


def ensure_dispatch(redis: Redis, keys: RedisKeys, record: JobRecord) -> bool:
    """Make sure the queued job reaches a worker: True when it was released already and its
    message is to be sent (again); False when it waits for its turn (now, if it did not)."""
    priority = record.spec.resources.priority
    answer = ENSURE_DISPATCH.run(
        redis,
        [
            keys.released(record.queue),
            keys.waiting(record.queue, priority, record.tenant),
            keys.turns(record.queue, priority),
            keys.dispatch_wake(),
            keys.released_at(record.queue, priority),
            keys.bound(record.queue),
        ],
        [record.id, created_ms(record), record.tenant],
    )
    return answer in ("send", b"send")
