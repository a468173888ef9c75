"""Webhooks as clients see them: the events a job may send, the form of a target URL, a job's
deliveries with their attempts, and the tenant's signing secret."""

from datetime import datetime
from typing import Literal, Self
from urllib.parse import urlsplit

from pydantic import BaseModel, Field

MAX_URL_LENGTH = 2048
WebhookEvent = Literal["state", "epoch"]
DeliveryOutcome = Literal["pending", "delivered", "failed"]
AttemptOutcome = Literal["sending", "ok", "failed", "lost"]


def check_url_form(url: str) -> str:
    """``url`` if it is an http(s) URL with a host and no credentials; ``ValueError`` if not."""
    if any(char.isspace() or ord(char) < 0x20 for char in url):
        raise ValueError("the URL must not contain spaces or control characters")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise ValueError("the URL must start with http:// or https://")
    if "@" in parts.netloc:
        raise ValueError("the URL must not carry credentials (user:password@); sign with the tenant secret")
    if not parts.hostname:
        raise ValueError("the URL needs a host")
    try:
        parts.port  # noqa: B018 - urlsplit checks the port only when asked for it
    except ValueError:
        raise ValueError("the URL's port is not a number from 0 to 65535") from None
    return url


class DeliveryAttempt(BaseModel):
    number: int = Field(description="1 for the first attempt of this delivery.")
    started_at: datetime
    outcome: AttemptOutcome = Field(
        "sending",
        description="`ok` (a 2xx answer), `failed`, `sending` while in flight, or `lost` when its "
        "sender stopped before recording an answer.",
    )
    status_code: int | None = Field(None, description="The receiver's HTTP status, when it answered.")
    error: str | None = Field(None, description="Why the attempt failed, when no 2xx answer came.")
    duration_ms: float | None = None


class Delivery(BaseModel):
    """One event's delivery to a job's webhook and its attempts."""

    id: str = Field(description="The delivery id, sent in the body and `X-KJobs-Delivery`.")
    event: WebhookEvent
    job_id: str
    attempt: int = Field(description="The job's attempt the event belongs to.")
    url: str
    created_at: datetime
    outcome: DeliveryOutcome = "pending"
    next_attempt_at: datetime | None = Field(None, description="When a pending retry is due.")
    attempts: list[DeliveryAttempt] = Field(default_factory=list)


class WebhookSecret(BaseModel):
    secret: str = Field(description="The key of the HMAC-SHA256 signature of every webhook request.")
    created_at: datetime


class WebhookSummary(BaseModel):
    """A job's webhook deliveries, counted (`GET /v1/jobs/{id}/deliveries` lists them)."""

    url: str
    events: list[WebhookEvent]
    created: int = Field(description="Deliveries queued so far, one per event.")
    delivered: int = Field(description="Deliveries a 2xx answer acknowledged.")
    failed: int = Field(description="Deliveries given up after their last attempt.")
    pending: int = Field(description="Deliveries waiting to be sent or retried.")
    dropped: int = Field(description="Epoch events not queued: the job reached its delivery limit.")

    @classmethod
    def of(cls, url: str, events: list[WebhookEvent], counts: dict[str, int]) -> Self:
        """The summary of a job's delivery counters."""
        pending = counts["created"] - counts["delivered"] - counts["failed"]
        return cls(url=url, events=events, pending=pending, **counts)


class DeliveryLog(BaseModel):
    job_id: str
    items: list[Delivery] = Field(description="The job's deliveries, oldest first, with their attempts.")
