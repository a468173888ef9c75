"""The dispatcher: releases waiting jobs to free slots of their queues, in the scheduler's order.

Every worker process runs one in a thread; the one that holds the dispatch lease in Redis
dispatches, the others wait to take over should it be lost. It wakes when a job starts waiting
or a slot comes free (``shared.scheduling.waiting`` pushes a nudge) and at least every second.
A queue's slots are its live workers (each runs one job at a time); a worker with a job in hand
(its heartbeat says so) or a job released that no worker has taken yet holds one. Each release
is one script, so the dispatcher can be lost at any point: a job is either still waiting or
released with a dispatch deadline, never both and never neither.
"""

import json
import logging
import os
import socket
import threading
import time
import uuid

from redis import Redis

from shared.jobs.dispatch import Dispatch
from shared.logs import job_fields
from shared.models.jobs import JobStatus
from shared.models.spec import PRIORITIES, Priority, QueueName
from shared.ops.registry import WorkerInfo, WorkerRegistry
from shared.queue import QUEUES, direct_queue
from shared.redis.keys import RedisKeys
from shared.redis.scripts import RELEASE, RELEASE_HOLD, RENEW_HOLD
from shared.settings import Settings

log = logging.getLogger(__name__)

QUEUED = json.dumps(JobStatus.QUEUED.value)
"""A job's status as its hash holds it (JSON-encoded)."""
HEAL_SECONDS = 10.0
"""How often a full queue's released set is checked for jobs that no longer hold a slot."""
WAKE_SECONDS = 1.0
"""The longest the dispatcher sleeps without a nudge: a slot freed by a worker that was lost is
seen once its heartbeat expires, with no nudge."""


class Dispatcher:
    """Releases jobs while this process holds the dispatch lease."""

    def __init__(self, dispatch: Dispatch, registry: WorkerRegistry, settings: Settings) -> None:
        self.dispatch, self.registry, self.settings = dispatch, registry, settings
        self.redis: Redis = dispatch.store.redis
        self.keys: RedisKeys = dispatch.store.keys
        # Which process dispatches, as an operator reads it: host, process id, then a nonce.
        self.identity = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._healed: dict[str, float] = {}
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="kjobs-dispatcher", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop, and give the lease up so that another process takes over at once."""
        self._stopped.set()
        if self._thread.is_alive():
            self._thread.join(timeout=2 * WAKE_SECONDS + self.settings.redis_socket_timeout_seconds)
        try:
            RELEASE_HOLD.run(self.redis, [self.keys.dispatcher()], [self.identity])
        except Exception as exc:
            log.warning("could not give the dispatch lease up: %s", exc)

    def holds(self) -> bool:
        """Take or keep the dispatch lease; whether this process holds it now."""
        lease_ms = int(self.settings.dispatcher_lease_seconds * 1000)
        return bool(RENEW_HOLD.run(self.redis, [self.keys.dispatcher()], [self.identity, lease_ms]))

    def _run(self) -> None:
        while not self._stopped.is_set():
            try:
                if not self.holds():
                    self._stopped.wait(WAKE_SECONDS)
                    continue
                self.dispatch_once()
                self._sleep()
            except Exception as exc:  # Redis away: try again in a while
                log.warning("dispatching failed: %s: %s", type(exc).__name__, exc)
                self._stopped.wait(WAKE_SECONDS)

    def _sleep(self) -> None:
        """Until a nudge, or a second; the nudges that came meanwhile are all answered by the next
        pass."""
        if self.redis.blpop([self.keys.dispatch_wake()], timeout=WAKE_SECONDS) is not None:
            self.redis.delete(self.keys.dispatch_wake())

    def dispatch_once(self) -> list[str]:
        """Release jobs to every free slot, in the scheduler's order; the ids released."""
        live = self.registry.live()
        released: list[str] = []
        for queue in QUEUES:
            workers = [worker for worker in live if queue in worker.queues]
            room = self.room(queue, workers)
            free = self.free_workers(queue, workers) if room > 0 else []
            while room > 0 and (found := self.release_next(queue, room, free)) is not None:
                job_id, worker = found
                self.dispatch.release(job_id, direct_queue(worker) if worker else queue)
                free = [entry for entry in free if entry[0] != worker]
                released.append(job_id)
                room -= 1
            if self.settings.preemption and workers and room <= 0:
                self.preempt(queue, len(workers))
        return released

    def room(self, queue: QueueName, workers: list[WorkerInfo]) -> int:
        """Free slots of ``queue``: its live workers, less those with a job in hand (their
        heartbeats say) and the released jobs no worker has taken yet. A job that runs holds a slot
        through its worker's heartbeat, so one whose worker is gone holds none (its lease lapses,
        and the reapers requeue it)."""
        if not workers:
            return 0
        self.heal(queue)
        released = [str(job_id) for job_id in self.redis.zrange(self.keys.released(queue), 0, -1)]
        pipe = self.redis.pipeline(transaction=False)
        for job_id in released:
            pipe.hget(self.keys.job(job_id), "status")
        unclaimed = sum(status == QUEUED for status in pipe.execute()) if released else 0
        busy = sum(worker.current_job is not None for worker in workers)
        return len(workers) - busy - unclaimed

    def heal(self, queue: QueueName) -> int:
        """Take out of a queue's released set the jobs that ended or are gone from Redis by a way
        that did not pass through a status change (a Redis that lost a write, a job's keys deleted
        by hand), so that they count for nothing. At most every ``HEAL_SECONDS`` per queue; how
        many were taken out."""
        now = time.monotonic()
        if now - self._healed.get(queue, 0.0) < HEAL_SECONDS:
            return 0
        self._healed[queue] = now
        released = [str(job_id) for job_id in self.redis.zrange(self.keys.released(queue), 0, -1)]
        pipe = self.redis.pipeline(transaction=False)
        for job_id in released:
            pipe.hget(self.keys.job(job_id), "status")
        stale = [
            job_id
            for job_id, status in zip(released, pipe.execute(), strict=True)
            if status is None or JobStatus(json.loads(str(status))).is_terminal()
        ]
        if stale:
            pipe.zrem(self.keys.released(queue), *stale)
            for priority in PRIORITIES:
                pipe.zrem(self.keys.released_at(queue, priority), *stale)
            pipe.hdel(self.keys.bound(queue), *stale)
            pipe.execute()
            log.warning("queue %s: %d released jobs no longer held a slot: %s", queue, len(stale), stale)
        return len(stale)

    def free_workers(self, queue: QueueName, workers: list[WorkerInfo]) -> list[tuple[str, int]]:
        """The workers of ``queue`` with no job in hand and none sent to them, as the release
        script takes them: name and GPU memory (-1 for no limit), the least memory first. Read
        only when a job of the queue needs GPU memory."""
        if not workers or not self.redis.hlen(self.keys.needs(queue)):
            return []
        taken = {str(name) for name in self.redis.hvals(self.keys.bound(queue))}
        free = [
            (worker.name, -1 if worker.slot_memory_mb is None else worker.slot_memory_mb)
            for worker in workers
            if worker.current_job is None and worker.name not in taken
        ]
        return sorted(free, key=lambda entry: (entry[1] < 0, entry[1]))

    def preempt(self, queue: QueueName, slots: int) -> str | None:
        """When a job waits on a full queue (as the caller found it) and a job of a lower priority
        runs there, ask the lowest-priority preemptible one (the most recently started of equals)
        to stop at its next epoch end; one at a time, so that one waiting job stops one running
        job. The id asked."""
        if slots <= 0:
            return None
        urgent = self.most_urgent(queue)
        if urgent is None:
            return None
        waiting_job, priority = urgent
        lower = PRIORITIES[PRIORITIES.index(priority) + 1 :]
        pipe = self.redis.pipeline(transaction=False)
        for below in lower:
            pipe.zrange(self.keys.released_at(queue, below), 0, -1)
        released = [str(job_id) for ids in pipe.execute() for job_id in ids]
        if not released:
            return None  # nothing of a lower priority runs: the usual case, one round trip
        running = [
            record
            for record in self.dispatch.store.get_many(released)
            if record is not None and record.status is JobStatus.RUNNING
        ]
        if any(record.preempt_by is not None for record in running):
            return None  # a preemption is under way
        rank = PRIORITIES.index
        candidates = [record for record in running if record.spec.resources.preemptible]
        if not candidates:
            return None
        victim = max(
            candidates, key=lambda r: (rank(r.spec.resources.priority), r.started_at or r.created_at)
        )
        if not self.dispatch.store.request_preemption(victim.id, waiting_job):
            return None
        log.info(
            "job %s: asked to stop at its next epoch end for job %s (%s priority)",
            victim.id,
            waiting_job,
            priority,
            extra=job_fields(victim.id),
        )
        return victim.id

    def most_urgent(self, queue: QueueName) -> tuple[str, Priority] | None:
        """The job that goes next on ``queue`` and its priority; None when none waits."""
        for priority in PRIORITIES:
            for tenant in self.redis.zrange(self.keys.turns(queue, priority), 0, 0):
                first = self.redis.zrange(self.keys.waiting(queue, priority, str(tenant)), 0, 0)
                if first:
                    return str(first[0]), priority
        return None

    def release_next(
        self, queue: QueueName, room: int, free: list[tuple[str, int]] | None = None
    ) -> tuple[str, str] | None:
        """Release the next job of ``queue`` if it has ``room`` (free slots): the most urgent
        priority with a job waiting, and in it the tenant of the lowest pass; a job that needs GPU
        memory goes to one of the ``free`` workers that has it. The job and its worker ('' for any
        of the queue's); None when none was released."""
        if room <= 0:
            return None
        deadline_ms = int(self.dispatch.store.dispatch_seconds * 1000)
        free_json = json.dumps(free or [])
        for priority in PRIORITIES:
            turns = self.keys.turns(queue, priority)
            while top := self.redis.zrange(turns, 0, 0):
                tenant = str(top[0])
                keys = [
                    self.keys.released(queue),
                    self.keys.leases(),
                    turns,
                    self.keys.turn_clock(queue, priority),
                    self.keys.waiting(queue, priority, tenant),
                    self.keys.released_at(queue, priority),
                    self.keys.needs(queue),
                    self.keys.bound(queue),
                ]
                weight = self.settings.tenant_weights.get(tenant, 1.0)
                answer = RELEASE.run(self.redis, keys, [tenant, room, weight, deadline_ms, free_json])
                kind, rest = answer[0], [str(word) for word in answer[1:]]
                if kind == "released":
                    job_id, worker = rest[0], rest[1] if len(rest) > 1 else ""
                    log.info(
                        "job %s: released to queue %s (%s priority)%s",
                        job_id,
                        queue,
                        priority,
                        f", to worker {worker}" if worker else "",
                        extra=job_fields(job_id),
                    )
                    return job_id, worker
                if kind == "blocked":
                    # Strict order: the jobs behind it wait with it for a worker with the memory.
                    log.debug(
                        "job %s: waits for a free worker with the GPU memory it needs",
                        rest[0],
                        extra=job_fields(rest[0]),
                    )
                    return None
                if kind == "full":
                    return None
                # Another tenant's turn came (a tenant that started waiting), or this one had
                # nothing left: look again.
        return None
