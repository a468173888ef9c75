"""Where queued jobs stand: a job's place in its queue, and a tenant's view of the queues."""

from typing import Literal

from pydantic import BaseModel, Field

from shared.models.spec import Priority, QueueName

WaitState = Literal["waiting", "released", "held"]


class QueuePlace(BaseModel):
    """Where a queued job stands and why it waits."""

    state: WaitState = Field(
        description="`waiting` for a free slot of its queue, in the scheduler's order; `released` to a "
        "worker, which has not taken it yet; or `held` by its study's cap on trials at once."
    )
    position: int | None = Field(
        None, description="1 when it is the next to start on its queue; null unless `waiting`."
    )
    ahead: int | None = Field(
        None, description="Jobs of every tenant that start before it, as the queue stands now."
    )
    ahead_of_higher_priority: int | None = Field(None, description="Of those, the jobs of a higher priority.")
    slots: int = Field(description="The live workers that take its queue.")
    reason: str = Field(description="Why it waits, in a sentence.")


class PriorityCounts(BaseModel):
    priority: Priority
    waiting: int = Field(description="The caller's jobs waiting for a slot at this priority.")
    released: int = Field(description="The caller's jobs released to a worker or running at this priority.")


class WaitingJob(BaseModel):
    id: str
    priority: Priority
    position: int = Field(description="1 when it is the next to start on its queue.")


class QueueView(BaseModel):
    queue: QueueName
    slots: int = Field(description="The live workers that take the queue.")
    priorities: list[PriorityCounts]
    waiting: list[WaitingJob] = Field(
        description="The caller's waiting jobs in the order they start (the first 100)."
    )


class QueueSummary(BaseModel):
    """The queues as one tenant sees them: every queue's slots, and its own jobs and counts."""

    queues: list[QueueView]
