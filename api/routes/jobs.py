"""Jobs: submit, list, get and cancel."""

import hashlib
import json
from typing import Annotated

from celery import Celery
from fastapi import APIRouter, Header, Query, Response

from api.dependencies import CeleryDep, JobDep, SettingsDep, StoreDep, TenantDep
from api.problems import CONFLICT_RESPONSE, PROBLEM_RESPONSES
from api.routes.webhooks import webhook_summary
from api.schemas import JobPage, JobSummary, JobView
from shared.datasets.store import DatasetStore
from shared.errors import FieldError, ServiceUnavailable, SpecInvalid
from shared.jobs.cancel import cancel
from shared.jobs.listing import list_jobs as list_job_page
from shared.jobs.store import Idempotency, JobStore
from shared.jobs.submission import resolve_submission
from shared.models.jobs import JOB_ID_PATTERN, JobRecord, JobStatus, StopReason, new_job_id
from shared.models.spec import JobSubmission, QueueName
from shared.queue import send_training
from shared.studies.store import StudyStore, dispatch_study
from shared.webhooks.claims import DeliveryClaims

router = APIRouter(prefix="/v1/jobs", tags=["jobs"], responses=PROBLEM_RESPONSES)


@router.post(
    "", status_code=202, response_model=JobView, responses=CONFLICT_RESPONSE, summary="Submit a training job"
)
def submit_job(
    submission: JobSubmission,
    response: Response,
    store: StoreDep,
    celery: CeleryDep,
    settings: SettingsDep,
    tenant: TenantDep,
    idempotency_key: Annotated[
        str | None,
        Header(
            pattern=r"^[\x21-\x7e]{1,255}$",
            description="Retry-safe submission: the same key with the same body returns the first job "
            "and creates nothing; with another body it is a 409. Keys are kept 24 hours.",
        ),
    ] = None,
) -> JobView:
    """Validate the spec (or preset with overrides), store the job, then enqueue it."""
    spec = resolve_submission(submission, settings)
    DatasetStore(store, settings.artifacts_dir).check_spec(spec, tenant)
    record = JobRecord.new(new_job_id(), tenant, spec, submission.preset)
    memo = (
        Idempotency(idempotency_key, body_hash(submission), settings.idempotency_seconds)
        if idempotency_key
        else None
    )
    stored, created = store.create(record, max_active=settings.max_active_jobs_per_tenant, idempotency=memo)
    if created:
        enqueue(store, celery, stored, spec.resources.queue or settings.default_queue)
    else:
        response.headers["Idempotent-Replayed"] = "true"
    response.headers["Location"] = f"/v1/jobs/{stored.id}"
    return JobView.of(stored)


def body_hash(submission: JobSubmission) -> str:
    """A digest of what was asked for (fields as posted, in a canonical order)."""
    canonical = json.dumps(submission.model_dump(mode="json", exclude_unset=True), sort_keys=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


def enqueue(store: JobStore, celery: Celery, record: JobRecord, queue: QueueName) -> None:
    """Send the stored job to its queue; if the broker refuses, the job fails rather than waits."""
    try:
        send_training(celery, record.id, queue)
    except Exception as exc:
        error = {"type": "enqueue_failed", "message": "the job could not be put on its queue"}
        fields = {"stop_reason": StopReason.ERROR.value, "error": error}
        store.change_status(record.id, JobStatus.FAILED, reason="could not be enqueued", fields=fields)
        raise ServiceUnavailable(f"job {record.id} could not be queued; submit it again later") from exc


@router.get("", response_model=JobPage, summary="List jobs, newest first")
def list_jobs(
    store: StoreDep,
    tenant: TenantDep,
    status: Annotated[list[JobStatus], Query(description="Only jobs in these statuses.")] = [],  # noqa: B006
    tag: Annotated[list[str], Query(description="Only jobs with these tags, as `key:value`.")] = [],  # noqa: B006
    limit: Annotated[int, Query(ge=1, le=100, description="Jobs per page.")] = 20,
    cursor: Annotated[
        str | None, Query(pattern=JOB_ID_PATTERN, description="`next_cursor` of the last page.")
    ] = None,
) -> JobPage:
    """A page of jobs with the filters applied, and the cursor of the next page."""
    records, next_cursor = list_job_page(
        store, tenant, statuses=status, tags=parse_tags(tag), limit=limit, cursor=cursor
    )
    return JobPage(items=[JobSummary.of(record) for record in records], next_cursor=next_cursor)


def parse_tags(pairs: list[str]) -> dict[str, str]:
    """``["team:vision"]`` as ``{"team": "vision"}``; a pair without a colon is a 422."""
    errors = [
        FieldError("tag", f"{pair!r} is not key:value", "value_error", "query")
        for pair in pairs
        if ":" not in pair
    ]
    tags = dict(pair.split(":", 1) for pair in pairs if ":" in pair)
    if len(tags) < len(pairs) - len(errors):
        errors.append(FieldError("tag", "each tag key may be given once", "value_error", "query"))
    if errors:
        raise SpecInvalid(errors)
    return tags


@router.get("/{job_id}", response_model=JobView, summary="Get a job")
def get_job(job: JobDep, store: StoreDep) -> JobView:
    """Status, spec, attempt, transitions, progress, best epoch, result, error and webhook deliveries."""
    return JobView.of(job, webhooks=webhook_summary(DeliveryClaims(store.redis, store.keys), job))


@router.post(
    "/{job_id}/cancel",
    response_model=JobView,
    responses={
        202: {"model": JobView, "description": "Cancelling: the job stops at its next batch end"},
        **CONFLICT_RESPONSE,
    },
    summary="Cancel a job",
)
def cancel_job(
    job: JobDep, store: StoreDep, celery: CeleryDep, settings: SettingsDep, response: Response
) -> JobView:
    """A queued job is cancelled at once (200); a running one is `cancelling` (202) until it stops."""
    record = cancel(store, job.id)
    if record.study is not None and record.status.is_terminal():
        dispatch_study(StudyStore(store, settings.default_queue), celery, record.study.id)
    response.status_code = 200 if record.status.is_terminal() else 202
    return JobView.of(record)
