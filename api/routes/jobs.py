"""Jobs: submit, list, get and cancel."""

from typing import Annotated

from fastapi import APIRouter, Query, Response

from api.dependencies import CeleryDep, JobDep, SettingsDep, StoreDep, TenantDep
from api.problems import PROBLEM_RESPONSES
from api.schemas import JobPage, JobSummary, JobView
from shared import lifecycle
from shared.errors import FieldError, SpecInvalid
from shared.jobs import JobRecord, JobStatus
from shared.queue import send_training
from shared.spec import JobSubmission
from shared.store import new_job_id
from shared.submission import resolve_submission

router = APIRouter(prefix="/v1/jobs", tags=["jobs"], responses=PROBLEM_RESPONSES)

ID_PATTERN = r"^[0-9a-f]{24}$"


@router.post("", status_code=202, response_model=JobView, summary="Submit a training job")
def submit_job(
    submission: JobSubmission,
    response: Response,
    store: StoreDep,
    celery: CeleryDep,
    settings: SettingsDep,
    tenant: TenantDep,
) -> JobView:
    """Validate the spec (or preset with overrides), store the job, then enqueue it."""
    spec = resolve_submission(submission, settings)
    record = JobRecord.new(new_job_id(), tenant, spec, submission.preset)
    store.create(record)
    assert spec.resources.queue is not None  # resolve_submission sets the default queue
    send_training(celery, record.id, spec.resources.queue)
    response.headers["Location"] = f"/v1/jobs/{record.id}"
    return JobView.of(record)


@router.get("", response_model=JobPage, summary="List jobs, newest first")
def list_jobs(
    store: StoreDep,
    tenant: TenantDep,
    status: Annotated[list[JobStatus], Query(description="Only jobs in these statuses.")] = [],  # noqa: B006
    tag: Annotated[list[str], Query(description="Only jobs with these tags, as `key:value`.")] = [],  # noqa: B006
    limit: Annotated[int, Query(ge=1, le=100, description="Jobs per page.")] = 20,
    cursor: Annotated[
        str | None, Query(pattern=ID_PATTERN, description="`next_cursor` of the last page.")
    ] = None,
) -> JobPage:
    """A page of jobs with the filters applied, and the cursor of the next page."""
    records, next_cursor = store.list_jobs(
        tenant, statuses=status, tags=parse_tags(tag), limit=limit, cursor=cursor
    )
    return JobPage(items=[JobSummary.of(record) for record in records], next_cursor=next_cursor)


def parse_tags(pairs: list[str]) -> dict[str, str]:
    """``["team:vision"]`` as ``{"team": "vision"}``; a pair without a colon is a 422."""
    bad = [pair for pair in pairs if ":" not in pair]
    if bad:
        errors = [FieldError("tag", f"{pair!r} is not key:value", "value_error", "query") for pair in bad]
        raise SpecInvalid(errors)
    return dict(pair.split(":", 1) for pair in pairs)


@router.get("/{job_id}", response_model=JobView, summary="Get a job")
def get_job(job: JobDep) -> JobView:
    """Status, spec, attempt, transitions, progress, best epoch, result and error."""
    return JobView.of(job)


@router.post(
    "/{job_id}/cancel",
    response_model=JobView,
    responses={202: {"model": JobView, "description": "Cancelling: the job stops at its next batch end"}},
    summary="Cancel a job",
)
def cancel_job(job: JobDep, store: StoreDep, response: Response) -> JobView:
    """A queued job is cancelled at once (200); a running one is `cancelling` (202) until it stops."""
    record = lifecycle.cancel(store, job.id)
    response.status_code = 200 if record.status.is_terminal() else 202
    return JobView.of(record)
