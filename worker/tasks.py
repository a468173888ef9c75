"""Celery tasks: thin wrappers that hand a job id to the runner."""

import logging

from shared.jobs.store import JobStore
from shared.queue import TRAIN_TASK
from shared.settings import Settings, get_settings
from shared.studies.store import StudyStore, dispatch_study
from worker.celery_app import app, attempt_worker, current_heartbeat, get_attempts
from worker.runner import run_job

log = logging.getLogger(__name__)


# Acknowledgement, requeue on a lost worker and result handling are set app-wide (shared.queue).
@app.task(name=TRAIN_TASK)  # type: ignore[untyped-decorator]
def train(job_id: str) -> None:
    """Train the stored job ``job_id``; the message carries nothing else."""
    heartbeat = current_heartbeat()
    if heartbeat is not None:
        heartbeat.set_job(job_id)
    attempts, settings = get_attempts(), get_settings()
    try:
        run_job(job_id, attempts, settings, attempt_worker())
    finally:
        if heartbeat is not None:
            heartbeat.set_job(None)
    let_study_go_on(job_id, attempts.store, settings)


def let_study_go_on(job_id: str, store: JobStore, settings: Settings) -> None:
    """If the job belonged to a study and has ended, send the study's next held jobs."""
    try:
        record = store.get(job_id)
        if record.study is not None and record.status.is_terminal():
            dispatch_study(StudyStore(store, settings.default_queue), app, record.study.id)
    except Exception as exc:  # a held job then waits for the next of its study's jobs to end
        log.warning("job %s: could not dispatch its study's next jobs: %s", job_id, exc)
