"""Request dependencies as ``Annotated`` aliases: settings, the store, and get-or-404 jobs."""

import re
import time
from typing import Annotated

from celery import Celery
from fastapi import Depends, Path, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from shared.auth.keys import Caller, KeyStore
from shared.errors import JobNotFound, TooManyRequests, Unauthorized
from shared.jobs.feed import JobFeed
from shared.jobs.store import JobStore
from shared.models.jobs import JOB_ID_PATTERN, JobRecord
from shared.settings import Settings

DEFAULT_TENANT = "default"
_JOB_ID = re.compile(JOB_ID_PATTERN)


# The accessors below are coroutines although they never wait: FastAPI runs a plain function
# dependency in its thread pool, and four such hops per request cost more than the request's
# Redis reads.


async def get_app_settings(request: Request) -> Settings:
    """The settings the app started with."""
    settings: Settings = request.app.state.settings
    return settings


async def get_store(request: Request) -> JobStore:
    """The app's job store."""
    store: JobStore = request.app.state.store
    return store


async def get_celery(request: Request) -> Celery:
    """The Celery app that sends tasks by name."""
    celery: Celery = request.app.state.celery
    return celery


async def get_keys(request: Request) -> KeyStore:
    """The app's API keys."""
    keys: KeyStore = request.app.state.api_keys
    return keys


async def get_feed(request: Request) -> JobFeed:
    """The app's asyncio reader of job records and changes."""
    feed: JobFeed = request.app.state.feed
    return feed


_bearer = HTTPBearer(auto_error=False, description="An API key: `Authorization: Bearer kj_...`.")


async def get_tenant(
    settings: Annotated[Settings, Depends(get_app_settings)],
    keys: Annotated[KeyStore, Depends(get_keys)],
    feed: Annotated[JobFeed, Depends(get_feed)],
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> str:
    """The tenant whose API key signs the request (401 without a valid one; 429 past the rate)."""
    if not settings.auth_enabled:
        return DEFAULT_TENANT
    if credentials is None:
        raise Unauthorized("this request needs an API key: Authorization: Bearer <key>")
    # On the asyncio client: every request checks a key, and a sync check would hand each one
    # to the thread pool and back, which costs more than the Redis round trip itself.
    caller = await keys.authenticate_async(
        feed.redis, credentials.credentials, settings.rate_limit_window_seconds
    )
    return admitted_tenant(caller, settings)


def admitted_tenant(caller: Caller | None, settings: Settings) -> str:
    """The tenant of a checked key (401 when it was not valid; 429 past the rate)."""
    if caller is None:
        raise Unauthorized("the API key is not valid, or has been revoked")
    if caller.requests_in_window > settings.rate_limit_requests:
        window = settings.rate_limit_window_seconds
        message = f"more than {settings.rate_limit_requests} requests in {window} s with this key"
        raise TooManyRequests(message, retry_after=window - int(time.time()) % window)
    return caller.tenant


SettingsDep = Annotated[Settings, Depends(get_app_settings)]
FeedDep = Annotated[JobFeed, Depends(get_feed)]
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
