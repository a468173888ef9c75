"""Jobs: submit, list, get and cancel."""

from typing import Annotated

from fastapi import APIRouter, Header, Query, Response

from api.dependencies import JobDep, ServicesDep, TenantDep
from api.problems import CONFLICT_RESPONSE, PROBLEM_RESPONSES, SPEC_INVALID_RESPONSE
from api.schemas import JobPage, JobSummary, JobView
from shared.jobs.cancel import cancel
from shared.jobs.listing import list_jobs as list_job_page
from shared.jobs.submission import submit_job as submit
from shared.models.jobs import JOB_ID_PATTERN, JobStatus
from shared.models.spec import JobSubmission, TagFilter

router = APIRouter(prefix="/v1/jobs", tags=["jobs"], responses=PROBLEM_RESPONSES)


@router.post(
    "",
    operation_id="submit_job",
    status_code=202,
    response_model=JobView,
    responses={**CONFLICT_RESPONSE, **SPEC_INVALID_RESPONSE},
    summary="Submit a training job",
)
def submit_job(
    submission: JobSubmission,
    response: Response,
    services: ServicesDep,
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
    stored, created = submit(
        tenant, submission, idempotency_key, services.datasets, services.dispatch, services.settings
    )
    if not created:
        response.headers["Idempotent-Replayed"] = "true"
    response.headers["Location"] = f"/v1/jobs/{stored.id}"
    return JobView.of(stored)


@router.get("", operation_id="list_jobs", response_model=JobPage, summary="List jobs, newest first")
def list_jobs(
    services: ServicesDep,
    tenant: TenantDep,
    status: Annotated[list[JobStatus], Query(description="Only jobs in these statuses.")] = [],  # noqa: B006
    tag: Annotated[
        list[TagFilter],
        Query(description="Only jobs with every one of these tags, each `key:value`; a value may hold `:`."),
    ] = [],  # noqa: B006
    limit: Annotated[int, Query(ge=1, le=100, description="Jobs per page.")] = 20,
    cursor: Annotated[
        str | None, Query(pattern=JOB_ID_PATTERN, description="`next_cursor` of the last page.")
    ] = None,
) -> JobPage:
    """A page of jobs with the filters applied, and the cursor of the next page."""
    tags = parse_tags(tag)
    if tags is None:  # one key asked with two values: a job has one value per key
        return JobPage(items=[], next_cursor=None)
    records, next_cursor = list_job_page(
        services.store, tenant, statuses=status, tags=tags, limit=limit, cursor=cursor
    )
    return JobPage(items=[JobSummary.of(record) for record in records], next_cursor=next_cursor)


def parse_tags(pairs: list[str]) -> dict[str, str] | None:
    """``["team:vision"]`` as ``{"team": "vision"}`` (each pair matched ``TagFilter``, so it has a
    colon); None when one key is given two values, which no job can have both of."""
    tags: dict[str, str] = {}
    for key, value in (pair.split(":", 1) for pair in pairs):
        if tags.setdefault(key, value) != value:
            return None
    return tags


@router.get("/{job_id}", operation_id="get_job", response_model=JobView, summary="Get a job")
def get_job(job: JobDep, services: ServicesDep) -> JobView:
    """Status, spec, attempt, transitions, progress, best epoch, result, error and webhook deliveries."""
    place = None
    if job.status is JobStatus.QUEUED:
        held = job.study is not None and job.id in services.studies.pending(job.study.id)
        place = services.queue.place(job, held)
    return JobView.of(job, webhooks=services.deliveries.summary(job), queue_place=place)


@router.post(
    "/{job_id}/cancel",
    operation_id="cancel_job",
    response_model=JobView,
    responses={
        202: {"model": JobView, "description": "Cancelling: the job stops at its next batch end"},
        **CONFLICT_RESPONSE,
    },
    summary="Cancel a job",
)
def cancel_job(job: JobDep, services: ServicesDep, response: Response) -> JobView:
    """A queued job is cancelled at once (200); a running one is `cancelling` (202) until it stops."""
    record = cancel(services.store, job.id)
    response.status_code = 200 if record.status.is_terminal() else 202
    return JobView.of(record)
