"""Celery tasks: thin wrappers that hand a job id to the runner."""

from shared.queue import TRAIN_TASK
from shared.settings import get_settings
from worker.celery_app import app, current_heartbeat, get_attempts
from worker.runner import run_job


# Acknowledgement, requeue on a lost worker and result handling are set app-wide (shared.queue).
@app.task(name=TRAIN_TASK)  # type: ignore[untyped-decorator]
def train(job_id: str) -> None:
    """Train the stored job ``job_id``; the message carries nothing else."""
    heartbeat = current_heartbeat()
    if heartbeat is not None:
        heartbeat.set_job(job_id)
    try:
        run_job(job_id, get_attempts(), get_settings())
    finally:
        if heartbeat is not None:
            heartbeat.set_job(None)
