"""Response models of the REST API (the request model is the spec in ``shared.models.spec``)."""

from datetime import datetime
from typing import Literal, Self

from pydantic import BaseModel, Field

from shared.models.artifacts import StoreStatus
from shared.models.devices import DeviceInfo
from shared.models.jobs import (
    AttemptWorker,
    BestEpoch,
    EpochRecord,
    JobErrorInfo,
    JobRecord,
    JobResult,
    JobStatus,
    Progress,
    StopReason,
    StudyMembership,
    Transition,
)
from shared.models.network import NetworkSummary
from shared.models.queue import QueuePlace
from shared.models.redis_contract import RedisContract
from shared.models.search import SearchView
from shared.models.spec import JobSpec, QueueName
from shared.models.studies import LeaderboardRow, Objective, StudyJob
from shared.models.webhooks import WebhookSummary


class JobLinks(BaseModel):
    self: str
    metrics: str
    model: str


class JobSummary(BaseModel):
    """A job as the list shows it."""

    id: str
    name: str | None
    tags: dict[str, str]
    preset: str | None
    status: JobStatus
    stop_reason: StopReason | None
    attempt: int = Field(description="Attempts started so far (0 while queued).")
    queue: QueueName = Field(description="The queue the job was sent to.")
    progress: Progress
    best: BestEpoch | None = Field(description="The best epoch so far by the monitored metric.")
    result: JobResult | None
    error: JobErrorInfo | None
    study: StudyMembership | None = Field(None, description="The study the job belongs to, if any.")
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    links: JobLinks

    @classmethod
    def of(cls, record: JobRecord, **extra: object) -> Self:
        """The view of a stored job."""
        base = f"/v1/jobs/{record.id}"
        return cls.model_validate(
            {
                **record.model_dump(exclude={"spec", "transitions", "tenant", "has_model"}),
                "name": record.spec.name,
                "tags": record.spec.tags,
                "queue": record.queue,
                "links": JobLinks(self=base, metrics=f"{base}/metrics", model=f"{base}/model"),
                **extra,
            }
        )


class JobView(JobSummary):
    """A job in full: its spec, its transitions and whether its model can be downloaded."""

    spec: JobSpec
    network: NetworkSummary | None = Field(
        None, description="The network planned on the dataset at submit time: each layer's output shape."
    )
    transitions: list[Transition]
    has_model: bool
    worker: AttemptWorker | None = Field(
        None, description="The worker of the latest attempt and its device; null before any ran."
    )
    webhooks: WebhookSummary | None = Field(
        None, description="The job's webhook deliveries, counted; null when its spec has no `notify`."
    )
    queue_place: QueuePlace | None = Field(
        None, description="Where a queued job stands in its queue and why it waits; null for any other."
    )

    @classmethod
    def of(cls, record: JobRecord, **extra: object) -> Self:
        """The full view of a stored job."""
        full = {
            "spec": record.spec,
            "network": record.network,
            "transitions": record.transitions,
            "has_model": record.has_model,
        }
        return super().of(record, **full, **extra)


class JobPage(BaseModel):
    items: list[JobSummary]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null at the end.")


class MetricsPage(BaseModel):
    job_id: str
    status: JobStatus
    records: list[EpochRecord]
    last_epoch: int = Field(description="The last epoch in `records`, or `after_epoch` when none is new.")
    has_more: bool = Field(description="Whether more records are stored than this page holds.")


class PresetView(BaseModel):
    name: str
    description: str
    spec: JobSpec


class Health(BaseModel):
    status: Literal["ok"]


class WorkerView(BaseModel):
    """A live worker: where it runs, what it trains on and whether it is busy."""

    name: str = Field(description="Celery's node name (`gpu0@host`).")
    host: str
    pid: int
    queues: list[str]
    backend: str | None = Field(description="The Keras backend; null until the worker has loaded it.")
    device: DeviceInfo | None = Field(description="What it trains on; null until the worker knows.")
    status: Literal["idle", "busy"]
    current_job: str | None = Field(
        description="The job it trains, when that job is the caller's; null when idle or another tenant's."
    )
    started_at: datetime
    seen_at: datetime = Field(description="Its latest heartbeat.")


class WorkerList(BaseModel):
    items: list[WorkerView] = Field(description="Live workers, by name.")


class Readiness(BaseModel):
    ready: bool
    redis: Literal["ok", "unreachable"]
    auth: Literal["enabled", "disabled"] = Field(
        description="`disabled` only where an operator turned it off."
    )
    workers: dict[str, int] = Field(description="Live workers per queue.")
    live_workers: list[WorkerView] = Field(
        default_factory=list,
        description="The live workers; no job ids (`GET /v1/workers` shows the caller's).",
    )
    artifacts: StoreStatus | None = Field(
        None,
        description="The artifact store as this API process last probed it (at most every 30 s); not "
        "ready while it cannot be used; `null` while Redis is unreachable.",
    )
    redis_contract: RedisContract | None = Field(
        None,
        description="How Redis meets the service's contract (no eviction, persistence, a password, "
        "TLS across a network), read at most once a minute; `null` while Redis is unreachable.",
    )


class StudyLinks(BaseModel):
    self: str
    report: str
    curves: str
    progress: str | None = Field(None, description="A search's best value against epochs spent (a PNG).")


class StudyView(BaseModel):
    id: str
    name: str | None
    status: Literal["running", "completed"]
    objective: Objective
    max_parallel: int | None
    jobs: list[StudyJob]
    counts: dict[str, int] = Field(description="Jobs per status; `held` for those the parallelism cap holds.")
    leaderboard: list[LeaderboardRow] = Field(description="Variants, best first by the objective.")
    search: SearchView | None = Field(
        None,
        description="A search's trials, best trial, importances and budgets; null for a study of variants.",
    )
    links: StudyLinks


class StudyPage(BaseModel):
    items: list[StudyView]
    next_cursor: str | None
