"""What a job is once submitted: its status, transitions, epoch records and result."""

import secrets
import threading
import time
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Self

from pydantic import BaseModel, Field, model_validator

from shared.models.devices import DeviceInfo
from shared.models.network import NetworkSummary
from shared.models.spec import JobSpec, QueueName

_last_id = [0, 0]  # (ms, random part) of this process's latest id
_id_lock = threading.Lock()


JOB_ID_PATTERN = r"^[0-9a-f]{24}$"
"""What ``new_job_id`` makes; anything else names no job."""


def new_job_id() -> str:
    """A 24-hex-digit id: 12 digits of submission time in ms, then 12 random ones.

    Ids sort by submission time, which the job list relies on; within one millisecond a
    process counts up from its previous id so that its ids still sort in order.
    """
    with _id_lock:
        ms, previous_ms = time.time_ns() // 1_000_000, _last_id[0]
        random_part = _last_id[1] + 1 if ms <= previous_ms else secrets.randbits(47)
        _last_id[:] = [max(ms, previous_ms), random_part]
        return f"{_last_id[0]:012x}{random_part:012x}"


class JobStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    CANCELLING = "cancelling"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    def is_terminal(self) -> bool:
        """Whether the job has ended for good."""
        return self in _TERMINAL


_TERMINAL = frozenset({JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED})
ACTIVE_STATUSES = frozenset({JobStatus.RUNNING, JobStatus.CANCELLING})
"""The statuses in which an attempt trains, holds a lease and may write."""


class StopReason(StrEnum):
    COMPLETED = "completed"
    EARLY_STOPPING = "early_stopping"
    MAX_RUNTIME = "max_runtime"
    CANCELLED = "cancelled"
    ERROR = "error"
    PRUNED = "pruned"
    PREEMPTED = "preempted"
    """Not an ending: the attempt stopped for a job of a higher priority, and the job waits again."""


def utc_now() -> datetime:
    """The current time, timezone-aware."""
    return datetime.now(UTC)


class Transition(BaseModel):
    status: JobStatus
    at: datetime
    attempt: int = Field(description="The attempt that made the change (0 before any ran).")
    reason: str | None = None


class Progress(BaseModel):
    epoch: int = Field(description="Epochs finished and recorded.")
    epochs: int = Field(description="Epochs the spec asks for (early stopping may end sooner).")


class BestEpoch(BaseModel):
    epoch: int
    monitor: str
    value: float


MAX_CONFUSION_CLASSES = 100
"""Most classes whose confusion matrix a result holds: it has K x K cells."""


class ClassScore(BaseModel):
    name: str = Field(description="The class's name.")
    precision: float = Field(description="Of the test samples predicted as this class, the share that are.")
    recall: float = Field(description="Of the test samples of this class, the share predicted as it.")
    f1: float = Field(description="The harmonic mean of precision and recall.")
    support: int = Field(description="Test samples of this class.")


class JobResult(BaseModel):
    test_loss: float = Field(
        description="The data loss on the test set (cross-entropy, or mean squared error for regression), "
        "without the regularization penalty, so variants compare."
    )
    test_accuracy: float | None = Field(None, description="Classification: accuracy on the test set.")
    test_mae: float | None = Field(None, description="Regression: mean absolute error on the test set.")
    test_rmse: float | None = Field(None, description="Regression: root mean squared error on the test set.")
    test_r2: float | None = Field(
        None, description="Regression: R² (coefficient of determination) on the test set."
    )
    class_scores: list[ClassScore] | None = Field(
        None,
        description="Classification: precision, recall and F1 per class on the test set, in label order.",
    )
    confusion_matrix: list[list[int]] | None = Field(
        None,
        description="Classification with at most 100 classes: test samples per true class (rows) and "
        "predicted class (columns), in label order.",
    )
    best_epoch: int | None = Field(description="Epoch of the best monitored value (1-based).")
    stopped_epoch: int = Field(description="The last epoch trained (1-based).")


class JobErrorInfo(BaseModel):
    type: str = Field(description="A stable name for the kind of failure.")
    message: str = Field(description="What went wrong, for people.")


class EpochRecord(BaseModel):
    """One finished epoch, written once when the epoch ends."""

    epoch: int = Field(ge=1, description="1-based epoch index.")
    loss: float = Field(description="Training loss, regularization penalty included.")
    accuracy: float | None = Field(None, description="Classification: training accuracy.")
    val_loss: float | None = None
    val_accuracy: float | None = None
    mae: float | None = Field(None, description="Regression: training mean absolute error.")
    val_mae: float | None = Field(None, description="Regression: validation mean absolute error.")
    data_loss: float | None = Field(None, description="Training loss without the regularization penalty.")
    val_data_loss: float | None = Field(None, description="Validation loss without the penalty.")
    regularization_penalty: float = Field(
        description="Sum of the model's regularization losses at the end of the epoch."
    )
    generalization_gap: float | None = Field(
        None,
        description="Training accuracy minus validation accuracy; for regression, validation data loss "
        "minus training data loss.",
    )
    learning_rate: float
    epoch_seconds: float
    samples_per_second: float
    attempt: int = Field(description="The attempt that trained this epoch.")
    at: datetime


class AttemptWorker(BaseModel):
    """The worker that runs (or ran) a job's latest attempt, and what it trains on."""

    name: str = Field(description="Celery's node name of the worker (`gpu0@host`).")
    host: str
    pid: int
    backend: str = Field(description="The Keras backend: `tensorflow`, `jax` or `torch`.")
    device: DeviceInfo


class StudyMembership(BaseModel):
    """The study a job belongs to, its variant's name there, and the trial it runs in a search."""

    id: str
    variant: str
    trial: int | None = None


class CheckpointRef(BaseModel):
    """An epoch checkpoint: the attempt that wrote it and its epoch."""

    attempt: int = Field(ge=1)
    epoch: int = Field(ge=1)


class JobRecord(BaseModel):
    """Everything stored about a job but its transitions and epoch records."""

    id: str
    tenant: str
    preset: str | None = None
    spec: JobSpec
    queue: QueueName = Field(description="The queue the job was sent to, resolved once at submission.")
    status: JobStatus
    stop_reason: StopReason | None = None
    attempt: int = 0
    progress: Progress
    best: BestEpoch | None = None
    result: JobResult | None = None
    error: JobErrorInfo | None = None
    has_model: bool = False
    model_checkpoint: CheckpointRef | None = Field(
        None,
        description="For a job that ended without its worker: the checkpoint its model is copied from "
        "(by the ending's follow-ups, which then set has_model).",
    )
    study: StudyMembership | None = None
    preempt_by: str | None = Field(
        None,
        description="The waiting job of a higher priority that this running job stops for at its next "
        "epoch end, once asked.",
    )
    preemptions: int = Field(0, description="How many times the job stopped for a job of a higher priority.")
    network: NetworkSummary | None = Field(
        None, description="The network as planned on the dataset at submit time (null for older jobs)."
    )
    worker: AttemptWorker | None = None
    transitions: list[Transition] = Field(default_factory=list)
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None

    @model_validator(mode="before")
    @classmethod
    def _queue_of_older_records(cls, data: Any) -> Any:
        # Jobs stored by earlier versions had their queue resolved into their spec only.
        if isinstance(data, dict) and "queue" not in data and isinstance(data.get("spec"), dict):
            return {**data, "queue": data["spec"].get("resources", {}).get("queue") or "cpu"}
        return data

    @classmethod
    def new(
        cls,
        job_id: str,
        tenant: str,
        spec: JobSpec,
        queue: QueueName,
        preset: str | None = None,
        study: StudyMembership | None = None,
        network: NetworkSummary | None = None,
    ) -> Self:
        """A freshly submitted, queued job."""
        now = utc_now()
        progress = Progress(epoch=0, epochs=spec.training.epochs)
        queued = Transition(status=JobStatus.QUEUED, at=now, attempt=0, reason="submitted")
        return cls(
            id=job_id,
            tenant=tenant,
            preset=preset,
            spec=spec,
            queue=queue,
            status=JobStatus.QUEUED,
            progress=progress,
            study=study,
            network=network,
            transitions=[queued],
            created_at=now,
            updated_at=now,
        )


NEXT_STATUSES: dict[JobStatus, frozenset[JobStatus]] = {
    JobStatus.QUEUED: frozenset({JobStatus.RUNNING, JobStatus.CANCELLED, JobStatus.FAILED}),
    # Back to queued when the attempt's worker is lost and the job gets another attempt.
    JobStatus.RUNNING: frozenset(
        {JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLING, JobStatus.QUEUED}
    ),
    JobStatus.CANCELLING: frozenset({JobStatus.CANCELLED, JobStatus.FAILED}),
    JobStatus.SUCCEEDED: frozenset(),
    JobStatus.FAILED: frozenset(),
    JobStatus.CANCELLED: frozenset(),
}
"""The status changes the service allows; anything else is a conflict."""
