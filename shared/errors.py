"""The service's exceptions. The API maps each to one HTTP status in ``api/problems.py``."""

from collections.abc import Sequence
from dataclasses import dataclass

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from shared.models.network import LAYER_TYPES
from shared.models.search import DISTRIBUTION_KINDS
from shared.models.spec import LAYER_OBJECT_TAG

ITEM_TAGS = frozenset({LAYER_OBJECT_TAG, *LAYER_TYPES})


class KerasJobsError(Exception):
    """Base of every error the service raises on purpose."""


@dataclass(frozen=True)
class FieldError:
    """One invalid field: its dotted path, what is wrong, a stable type, and where it was sent."""

    field: str
    message: str
    type: str = "value_error"
    location: str = "body"


class SpecInvalid(KerasJobsError):
    """A request (a spec, a query) failed validation; ``errors`` names every bad field."""

    def __init__(self, errors: list[FieldError]) -> None:
        super().__init__("; ".join(f"{e.field}: {e.message}" for e in errors))
        self.errors = errors


class JobNotFound(KerasJobsError):
    """No job has this id (or it has expired)."""

    def __init__(self, job_id: str) -> None:
        super().__init__(f"no job with id {job_id!r}")
        self.job_id = job_id


class Conflict(KerasJobsError):
    """The request does not fit the job's current state (a model not written yet, say)."""


class Unauthorized(KerasJobsError):
    """No API key, or one that is unknown or revoked."""


class TooManyRequests(KerasJobsError):
    """A rate limit or quota is reached; ``retry_after`` says when to try again, in seconds."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class InvalidTransition(Conflict):
    """A status change that the job's current status does not allow."""


class StaleAttempt(KerasJobsError):
    """A write from an attempt that a newer attempt of the same job has replaced."""


class ServiceUnavailable(KerasJobsError):
    """A backing service (the broker, say) refused work that the client may retry later."""


class TrainingError(KerasJobsError):
    """Training cannot go on (data missing, loss not finite, ...); the message is for the user."""


def field_path(loc: Sequence[int | str]) -> str:
    """A pydantic location as a dotted path (``model.hidden_layers.2.units``, ``model.layers.0.filters``):
    without the tag pydantic puts after a list item of a tagged union (the form, or the layer's type)."""
    kept = [
        part
        for index, part in enumerate(loc)
        if not (index and isinstance(loc[index - 1], int) and part in ITEM_TAGS)
        # A search's distribution, tagged by its one key: ``space.x.float.float.low`` names it once.
        and not (index + 1 < len(loc) and part in DISTRIBUTION_KINDS and loc[index + 1] == part)
    ]
    return ".".join(str(part) for part in kept)


def field_error(detail: ErrorDetails, loc_prefix_len: int = 0) -> FieldError:
    """One pydantic error as a ``FieldError``; cross-field errors name their field in ``ctx``."""
    ctx = detail.get("ctx") or {}
    field = ctx.get("field") or field_path(detail["loc"][loc_prefix_len:]) or "body"
    return FieldError(field=str(field), message=detail["msg"], type=detail["type"])


def field_errors(exc: ValidationError) -> list[FieldError]:
    """Every error of a spec validation, with its field path."""
    return [field_error(detail) for detail in exc.errors(include_url=False)]
