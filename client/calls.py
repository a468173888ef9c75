"""Each operation of the REST API as a description of its request and of how to read its answer.

The sync and async clients send the same descriptions, so a path, a parameter or a response
model is written once for both.
"""

import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel, TypeAdapter

from api.schemas import (
    Health,
    JobPage,
    JobView,
    MetricsPage,
    PresetView,
    Readiness,
    StudyPage,
    StudyView,
    WorkerList,
)
from shared.models.datasets import DatasetInfo
from shared.models.jobs import JobStatus
from shared.models.queue import QueueSummary
from shared.models.spec import JobSpec
from shared.models.studies import StudyRequest
from shared.models.webhooks import DeliveryLog, WebhookSecret

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)

SpecLike = JobSpec | Mapping[str, Any]
"""A ``JobSubmission`` or ``JobSpec`` (only the fields set are sent), or the same as a dict."""
StudyLike = StudyRequest | Mapping[str, Any]
ReportFormat = Literal["csv", "markdown", "trials-csv"]
"""The leaderboard as CSV or Markdown (a search's sections too), or a search's trials as CSV."""
IDEMPOTENCY_HEADER = "Idempotency-Key"
LONG_POLL_MARGIN_SECONDS = 30.0
# The event stream sends a keep-alive every 15 s: a read that waits 60 s has missed several.
STREAM_TIMEOUT = httpx.Timeout(30.0, read=60.0)


@dataclass(frozen=True)
class Call(Generic[T]):
    """One request and the reading of its answer."""

    method: str
    path: str
    read: Callable[[httpx.Response], T]
    params: list[tuple[str, str]] = field(default_factory=list)
    json: Any = None
    files: list[tuple[str, tuple[str, bytes]]] | None = None
    data: dict[str, str] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    answers: frozenset[int] = frozenset()
    """Error statuses that are answers of this call rather than failures (readyz's 503)."""
    timeout: float | httpx.Timeout | None = None

    @property
    def repeat_safe(self) -> bool:
        """Whether sending it twice has the effect of sending it once."""
        return self.method == "GET" or IDEMPOTENCY_HEADER in self.headers


def segment(value: str) -> str:
    """``value`` as one path segment, whatever it holds."""
    return quote(value, safe="")


def model(cls: type[M]) -> Callable[[httpx.Response], M]:
    """Read an answer as ``cls``."""
    return lambda response: cls.model_validate_json(response.content)


def model_list(cls: type[M]) -> Callable[[httpx.Response], list[M]]:
    """Read an answer as a list of ``cls``."""
    adapter = TypeAdapter(list[cls])  # type: ignore[valid-type]
    return lambda response: adapter.validate_json(response.content)


def body_of(value: BaseModel | Mapping[str, Any]) -> dict[str, Any]:
    """The JSON body of a spec or request: a model's fields that were set, or the mapping as is.

    Only set fields go, so a preset's values are not overwritten by defaults nobody chose.
    """
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json", exclude_unset=True)
    return dict(value)


def new_idempotency_key() -> str:
    """A key for one logical submission, reused by each of its retries."""
    return uuid.uuid4().hex


def submit_job(spec: SpecLike, idempotency_key: str | None = None) -> Call[JobView]:
    key = idempotency_key or new_idempotency_key()
    headers = {IDEMPOTENCY_HEADER: key}
    return Call("POST", "/v1/jobs", model(JobView), json=body_of(spec), headers=headers)


def list_jobs(
    status: Sequence[JobStatus | str] = (),
    tag: Mapping[str, str] | None = None,
    limit: int | None = None,
    cursor: str | None = None,
) -> Call[JobPage]:
    params = [("status", str(value)) for value in status]
    params += [("tag", f"{key}:{value}") for key, value in (tag or {}).items()]
    params += _optional(limit=limit, cursor=cursor)
    return Call("GET", "/v1/jobs", model(JobPage), params=params)


def get_job(job_id: str) -> Call[JobView]:
    return Call("GET", f"/v1/jobs/{segment(job_id)}", model(JobView))


def cancel_job(job_id: str) -> Call[JobView]:
    return Call("POST", f"/v1/jobs/{segment(job_id)}/cancel", model(JobView))


def job_metrics(
    job_id: str, after_epoch: int = 0, limit: int | None = None, wait: int = 0
) -> Call[MetricsPage]:
    params = _optional(after_epoch=after_epoch or None, limit=limit, wait=wait or None)
    # A long poll holds the answer back for up to ``wait`` seconds: give the read that long.
    timeout = wait + LONG_POLL_MARGIN_SECONDS if wait else None
    return Call("GET", f"/v1/jobs/{segment(job_id)}/metrics", model(MetricsPage), params, timeout=timeout)


def job_events(job_id: str, after_epoch: int = 0) -> Call[None]:
    """The event stream, resumed after ``after_epoch``; read as a stream, never at once."""
    headers = {"Last-Event-ID": str(after_epoch)} if after_epoch else {}
    path = f"/v1/jobs/{segment(job_id)}/events"
    return Call("GET", path, _unread, headers=headers, timeout=STREAM_TIMEOUT)


def job_model(job_id: str) -> Call[None]:
    """The trained model's bytes; read as a stream into a file."""
    return Call("GET", f"/v1/jobs/{segment(job_id)}/model", _unread, timeout=STREAM_TIMEOUT)


def job_deliveries(job_id: str) -> Call[DeliveryLog]:
    return Call("GET", f"/v1/jobs/{segment(job_id)}/deliveries", model(DeliveryLog))


def webhook_secret() -> Call[WebhookSecret]:
    return Call("GET", "/v1/webhooks/secret", model(WebhookSecret))


def rotate_webhook_secret() -> Call[WebhookSecret]:
    return Call("POST", "/v1/webhooks/secret/rotate", model(WebhookSecret))


def list_presets() -> Call[list[PresetView]]:
    return Call("GET", "/v1/presets", model_list(PresetView))


def create_study(request: StudyLike) -> Call[StudyView]:
    return Call("POST", "/v1/studies", model(StudyView), json=body_of(request))


def list_studies(limit: int | None = None, cursor: str | None = None) -> Call[StudyPage]:
    return Call("GET", "/v1/studies", model(StudyPage), params=_optional(limit=limit, cursor=cursor))


def get_study(study_id: str) -> Call[StudyView]:
    return Call("GET", f"/v1/studies/{segment(study_id)}", model(StudyView))


def cancel_study(study_id: str) -> Call[StudyView]:
    return Call("POST", f"/v1/studies/{segment(study_id)}/cancel", model(StudyView))


def study_report(study_id: str, format: ReportFormat = "markdown") -> Call[str]:
    path = f"/v1/studies/{segment(study_id)}/report"
    return Call("GET", path, lambda response: response.text, params=[("format", format)])


def study_curves(study_id: str) -> Call[bytes]:
    return Call("GET", f"/v1/studies/{segment(study_id)}/curves.png", lambda response: response.content)


def search_progress(study_id: str) -> Call[bytes]:
    return Call("GET", f"/v1/studies/{segment(study_id)}/progress.png", lambda response: response.content)


def upload_dataset(
    files: Sequence[tuple[str, bytes]], name: str | None = None, convert: bool = False
) -> Call[DatasetInfo]:
    parts = [("file", (filename, content)) for filename, content in files]
    form = {"convert": "true" if convert else "false", **({"name": name} if name else {})}
    return Call("POST", "/v1/datasets", model(DatasetInfo), files=parts, data=form)


def list_datasets() -> Call[list[DatasetInfo]]:
    return Call("GET", "/v1/datasets", model_list(DatasetInfo))


def get_dataset(dataset_id: str) -> Call[DatasetInfo]:
    return Call("GET", f"/v1/datasets/{segment(dataset_id)}", model(DatasetInfo))


def delete_dataset(dataset_id: str) -> Call[None]:
    return Call("DELETE", f"/v1/datasets/{segment(dataset_id)}", lambda response: None)


def health() -> Call[Health]:
    return Call("GET", "/healthz", model(Health))


def list_workers() -> Call[WorkerList]:
    return Call("GET", "/v1/workers", model(WorkerList))


def queue_summary() -> Call[QueueSummary]:
    return Call("GET", "/v1/queue", model(QueueSummary))


def readiness(operator_token: str | None) -> Call[Readiness]:
    headers = {"Authorization": f"Bearer {operator_token}"} if operator_token else {}
    return Call("GET", "/readyz", model(Readiness), headers=headers, answers=frozenset({503}))


def _unread(response: httpx.Response) -> None:
    return None


def _optional(**values: object) -> list[tuple[str, str]]:
    return [(name, str(value)) for name, value in values.items() if value is not None]
