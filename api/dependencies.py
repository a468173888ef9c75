"""Request dependencies as ``Annotated`` aliases: settings, the store, and get-or-404 jobs."""

import re
from typing import Annotated

from celery import Celery
from fastapi import Depends, Path, Request

from shared.errors import JobNotFound
from shared.jobs import JOB_ID_PATTERN, JobRecord
from shared.settings import Settings
from shared.store import JobStore

DEFAULT_TENANT = "default"
_JOB_ID = re.compile(JOB_ID_PATTERN)


def get_app_settings(request: Request) -> Settings:
    """The settings the app started with."""
    settings: Settings = request.app.state.settings
    return settings


def get_store(request: Request) -> JobStore:
    """The app's job store."""
    store: JobStore = request.app.state.store
    return store


def get_celery(request: Request) -> Celery:
    """The Celery app that sends tasks by name."""
    celery: Celery = request.app.state.celery
    return celery


def get_tenant() -> str:
    """The tenant a request acts for."""
    return DEFAULT_TENANT


SettingsDep = Annotated[Settings, Depends(get_app_settings)]
StoreDep = Annotated[JobStore, Depends(get_store)]
CeleryDep = Annotated[Celery, Depends(get_celery)]
TenantDep = Annotated[str, Depends(get_tenant)]
JobIdPath = Annotated[str, Path(description="The job's id, as `POST /v1/jobs` returned it.")]


def check_job_id(job_id: str) -> None:
    """A malformed id names no job: 404, like an unknown one."""
    if not _JOB_ID.fullmatch(job_id):
        raise JobNotFound(job_id)


def valid_job(job_id: JobIdPath, store: StoreDep, tenant: TenantDep) -> JobRecord:
    """The job named in the path; 404 when the id is malformed, unknown or another tenant's."""
    check_job_id(job_id)
    record = store.get(job_id)
    if record.tenant != tenant:
        raise JobNotFound(job_id)
    return record


JobDep = Annotated[JobRecord, Depends(valid_job)]
