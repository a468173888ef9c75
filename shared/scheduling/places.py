"""Reading the scheduler's sets: where a queued job stands, and a tenant's view of the queues.

A waiting job's position is what the dispatcher's order makes of the queue as it stands: every
job of a higher priority first, then, at its own priority, each tenant's jobs at their passes
(a tenant's ``k``-th job goes at its pass plus ``k`` over its weight), ties going to the tenant
whose name sorts first, as in the turns' sorted set.
"""

import math
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import cast

from shared.jobs.store import JobStore
from shared.models.jobs import JobRecord, JobStatus
from shared.models.queue import PriorityCounts, QueuePlace, QueueSummary, QueueView, WaitingJob
from shared.models.spec import PRIORITIES, Priority, QueueName
from shared.ops.registry import WorkerRegistry
from shared.queue import QUEUES
from shared.settings import Settings

SHOWN_WAITING = 100
"""The most waiting jobs a tenant's view of a queue lists."""
_EPSILON = 1e-9


@dataclass(frozen=True)
class Turns:
    """The tenants waiting on a queue at one priority: each one's pass (the clock at least) and
    its count of waiting jobs."""

    passes: Mapping[str, float]
    counts: Mapping[str, int]
    clock: float

    def total(self) -> int:
        return sum(self.counts.values())

    def ahead(self, tenant: str, rank: int, weights: Mapping[str, float]) -> int:
        """Jobs that start before ``tenant``'s job of ``rank`` among its own."""
        mine = self.passes.get(tenant, self.clock) + rank / weights.get(tenant, 1.0)
        ahead = rank
        for other, count in self.counts.items():
            if other == tenant:
                continue
            # Its j-th job goes at its pass + j / its weight: those before mine, ties by name.
            steps = (mine - self.passes[other]) * weights.get(other, 1.0)
            before = math.ceil(steps - _EPSILON) if steps > _EPSILON else 0
            if other < tenant and steps > -_EPSILON and abs(steps - round(steps)) < _EPSILON:
                before = round(steps) + 1
            ahead += min(count, before)
        return ahead


class QueueReader:
    """Positions and summaries, read from the scheduler's sets."""

    def __init__(self, store: JobStore, settings: Settings) -> None:
        self.store, self.redis, self.keys = store, store.redis, store.keys
        self.weights = settings.tenant_weights
        self.registry = WorkerRegistry(store.redis, store.keys)

    def slots(self) -> Counter[str]:
        """Each queue's slots: the live workers that take it."""
        return Counter(queue for worker in self.registry.live() for queue in worker.queues)

    def turns(self, queue: QueueName, priority: Priority) -> Turns:
        scored = cast(
            list[tuple[str, float]],
            self.redis.zrange(self.keys.turns(queue, priority), 0, -1, withscores=True),
        )
        clock = float(self.redis.get(self.keys.turn_clock(queue, priority)) or 0.0)
        pipe = self.redis.pipeline(transaction=False)
        for tenant, _ in scored:
            pipe.zcard(self.keys.waiting(queue, priority, str(tenant)))
        counts = [int(n) for n in pipe.execute()]
        passes = {str(tenant): max(float(score), clock) for tenant, score in scored}
        return Turns(passes, dict(zip(passes, counts, strict=True)), clock)

    def place(self, record: JobRecord, held: bool = False) -> QueuePlace | None:
        """Where a queued job stands (None for any other); ``held`` when its study holds it."""
        if record.status is not JobStatus.QUEUED:
            return None
        queue = record.queue
        serving = [worker for worker in self.registry.live() if queue in worker.queues]
        slots = len(serving)
        if held:
            reason = "held by its study until one of its running trials ends"
            return QueuePlace(state="held", slots=slots, reason=reason)
        if self.redis.zscore(self.keys.released(queue), record.id) is not None:
            reason = f"released to a worker of queue {queue}; it starts when the worker takes it"
            return QueuePlace(state="released", slots=slots, reason=reason)
        priority = record.spec.resources.priority
        rank = cast(
            int | None, self.redis.zrank(self.keys.waiting(queue, priority, record.tenant), record.id)
        )
        if rank is None:
            return QueuePlace(state="waiting", slots=slots, reason="on its way to its queue's waiting line")
        higher = self._higher(queue, priority)
        ahead = higher + self.turns(queue, priority).ahead(record.tenant, int(rank), self.weights)
        if not slots:
            reason = f"no live worker takes queue {queue}: it starts once one does"
        else:
            busy = sum(worker.current_job is not None for worker in serving)
            reason = f"{ahead} jobs start before it on queue {queue}; {busy} of its {slots} slots are busy"
        return QueuePlace(
            state="waiting",
            position=ahead + 1,
            ahead=ahead,
            ahead_of_higher_priority=higher,
            slots=slots,
            reason=reason,
        )

    def waiting_counts(self) -> dict[tuple[QueueName, Priority], int]:
        """Jobs of every tenant waiting for a slot, per queue and priority: two round trips."""
        pipe = self.redis.pipeline(transaction=False)
        lines = [(queue, priority) for queue in QUEUES for priority in PRIORITIES]
        for queue, priority in lines:
            pipe.zrange(self.keys.turns(queue, priority), 0, -1)
        tenants = [[str(tenant) for tenant in found] for found in pipe.execute()]
        for (queue, priority), names in zip(lines, tenants, strict=True):
            for tenant in names:
                pipe.zcard(self.keys.waiting(queue, priority, tenant))
        counts = iter(int(n) for n in pipe.execute())
        return {line: sum(next(counts) for _ in names) for line, names in zip(lines, tenants, strict=True)}

    def _higher(self, queue: QueueName, priority: Priority) -> int:
        """Jobs of every tenant waiting on ``queue`` at a priority above ``priority``."""
        return sum(self.turns(queue, p).total() for p in PRIORITIES[: PRIORITIES.index(priority)])

    def summary(self, tenant: str) -> QueueSummary:
        """Every queue's slots, and the tenant's counts per priority and waiting jobs in order."""
        slots = self.slots()
        return QueueSummary(queues=[self._queue(queue, tenant, slots[queue]) for queue in QUEUES])

    def _queue(self, queue: QueueName, tenant: str, slots: int) -> QueueView:
        released = [str(job_id) for job_id in self.redis.zrange(self.keys.released(queue), 0, -1)]
        running = Counter(
            record.spec.resources.priority
            for record in self.store.get_many(released)
            if record is not None and record.tenant == tenant
        )
        counts: list[PriorityCounts] = []
        waiting: list[WaitingJob] = []
        higher = 0
        for priority in PRIORITIES:
            turns = self.turns(queue, priority)
            ids = self.redis.zrange(self.keys.waiting(queue, priority, tenant), 0, SHOWN_WAITING - 1)
            mine = turns.counts.get(tenant, 0)
            counts.append(PriorityCounts(priority=priority, waiting=mine, released=running[priority]))
            for rank, job_id in enumerate(ids[: SHOWN_WAITING - len(waiting)]):
                position = higher + turns.ahead(tenant, rank, self.weights) + 1
                waiting.append(WaitingJob(id=str(job_id), priority=priority, position=position))
            higher += turns.total()
        return QueueView(queue=queue, slots=slots, priorities=counts, waiting=waiting)
