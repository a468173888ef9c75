"""The service's exceptions. The API maps each to one HTTP status in ``api/problems.py``."""

from dataclasses import dataclass


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
