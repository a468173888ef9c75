"""The client's exceptions; a caller catches ``KJobsError`` for every failure of a call.

``KJobsError``
    ``ApiError``: the service answered with an error status (a problem+json document).
    ``ServiceUnreachable``: no answer came, even after the retries the call allows.
"""

from dataclasses import dataclass
from typing import Any

import httpx


class KJobsError(Exception):
    """Base of every error a client call raises."""


@dataclass(frozen=True)
class FieldIssue:
    """One invalid field named by a problem document."""

    field: str
    message: str
    type: str = "value_error"
    location: str = "body"


class ApiError(KJobsError):
    """The service refused or failed a request; its problem document, field by field."""

    def __init__(
        self,
        status: int,
        title: str,
        detail: str = "",
        *,
        type: str = "about:blank",
        instance: str | None = None,
        errors: tuple[FieldIssue, ...] = (),
        retry_after: str | None = None,
    ) -> None:
        super().__init__(f"{status} {title}: {detail}" if detail else f"{status} {title}")
        self.status = status
        self.title = title
        self.detail = detail
        self.type = type
        self.instance = instance
        self.errors = errors
        self.retry_after = retry_after

    @property
    def fields(self) -> list[str]:
        """The dotted paths of the invalid fields, in the order the service gave them."""
        return [issue.field for issue in self.errors]

    @classmethod
    def from_response(cls, response: httpx.Response) -> "ApiError":
        """The error an answer stands for; a body that is not a problem document still gives one."""
        body = _json_object(response)
        detail = body.get("detail")
        return cls(
            response.status_code,
            str(body.get("title") or response.reason_phrase or "Error"),
            str(detail) if detail is not None else response.text[:500].strip(),
            type=str(body.get("type") or "about:blank"),
            instance=str(body["instance"]) if body.get("instance") else None,
            errors=tuple(_issues(body.get("errors"))),
            retry_after=response.headers.get("Retry-After"),
        )


class ServiceUnreachable(KJobsError):
    """The service could not be reached, or the connection dropped, past the retries allowed."""


def _json_object(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _issues(raw: object) -> list[FieldIssue]:
    if not isinstance(raw, list):
        return []
    return [
        FieldIssue(
            field=str(item.get("field", "")),
            message=str(item.get("message", "")),
            type=str(item.get("type", "value_error")),
            location=str(item.get("location", "body")),
        )
        for item in raw
        if isinstance(item, dict)
    ]
