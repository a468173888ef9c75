"""Celery tasks: thin wrappers that hand a job id to the runner."""

import logging

from shared.queue import TRAIN_TASK
from shared.settings import get_settings
from worker.celery_app import (
    app,
    attempt_worker,
    current_heartbeat,
    get_attempts,
    get_cache,
    get_endings,
    get_search,
)
from worker.runner import run_job

log = logging.getLogger(__name__)


# Acknowledgement, requeue on a lost worker and result handling are set app-wide (shared.queue).
@app.task(name=TRAIN_TASK)  # type: ignore[untyped-decorator]
def train(job_id: str) -> None:
    """Train the stored job ``job_id``; the message carries nothing else."""
    heartbeat = current_heartbeat()
    if heartbeat is not None:
        heartbeat.set_job(job_id)
    try:
        run_job(job_id, get_attempts(), get_settings(), get_cache(), attempt_worker(), get_search())
    finally:
        if heartbeat is not None:
            heartbeat.set_job(None)
    # Its ending's follow-ups at once (its study goes on); the heartbeat settles what this misses.
    try:
        get_endings().settle()
    except Exception as exc:
        log.warning("job %s: endings not settled now: %s", job_id, exc)
