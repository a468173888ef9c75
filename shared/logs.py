"""Logging for the API and the workers: one JSON object per line, with the job on every line
about a job.

Code that works on one job runs inside ``job_context``; lines logged there carry ``job_id``
and ``attempt`` without repeating them. Lines about a job logged elsewhere (a lease thread,
the reaper) pass them with ``extra=job_fields(...)``.
"""

import json
import logging
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from shared.models.jobs import JOB_ID_PATTERN
from shared.settings import LogFormat

# Attributes every LogRecord has; anything else on a record came from ``extra`` and is logged.
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}
_JOB_ID = re.compile(JOB_ID_PATTERN.strip("^$"))


@dataclass
class _Job:
    job_id: str
    attempt: int | None = None


_current: ContextVar[_Job | None] = ContextVar("kjobs_job", default=None)


@contextmanager
def job_context(job_id: str, attempt: int | None = None) -> Iterator[None]:
    """Lines logged inside carry the job's id (and its attempt, once known)."""
    token = _current.set(_Job(job_id, attempt))
    try:
        yield
    finally:
        _current.reset(token)


def set_attempt(attempt: int) -> None:
    """Name the attempt in the lines that follow, inside ``job_context``."""
    job = _current.get()
    if job is not None:
        job.attempt = attempt


def job_fields(job_id: str, attempt: int | None = None) -> dict[str, Any]:
    """``extra`` for a line about a job logged outside its ``job_context``."""
    return {"job_id": job_id, "attempt": attempt}


class JsonFormatter(logging.Formatter):
    """A JSON object per record: time, level, logger, message, the job, and any ``extra``."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        job = _current.get()
        if job is not None:
            entry.update(job_id=job.job_id, attempt=job.attempt)
        entry.update({k: v for k, v in vars(record).items() if k not in _STANDARD})
        if "job_id" not in entry and (found := _job_in_task_arguments(record)):
            entry["job_id"] = found
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def _job_in_task_arguments(record: logging.LogRecord) -> str | None:
    # Celery logs a message's arrival with its arguments (a training task's only one is the
    # job id) before any of our code runs for it.
    data = getattr(record, "data", None)
    arguments = data.get("args") if isinstance(data, dict) else None
    found = _JOB_ID.search(arguments) if isinstance(arguments, str) else None
    return found.group(0) if found else None


def configure_logging(log_format: LogFormat, level: int | str = "INFO") -> None:
    """Send every logger's records to stderr in ``log_format``, replacing other handlers."""
    handler = logging.StreamHandler(sys.stderr)
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper() if isinstance(level, str) else level)
    # Uvicorn's and Celery's loggers write through the root's handler, in the same format.
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "celery"):
        named = logging.getLogger(name)
        named.handlers.clear()
        named.propagate = True
