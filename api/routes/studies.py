"""Studies: several variants as ordinary jobs, with a leaderboard, a report and learning curves."""

import contextlib
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Response

from api.curves import curves_png
from api.dependencies import CeleryDep, JobIdPath, SettingsDep, StoreDep, TenantDep, check_job_id
from api.problems import PROBLEM_RESPONSES
from api.routes.jobs import enqueue
from api.schemas import StudyLinks, StudyPage, StudyView
from shared.datasets.store import DatasetStore
from shared.errors import Conflict, JobNotFound, TooManyRequests
from shared.jobs.cancel import cancel
from shared.jobs.store import JobStore
from shared.models.jobs import (
    JOB_ID_PATTERN,
    JobRecord,
    JobStatus,
    StudyMembership,
    new_job_id,
    utc_now,
)
from shared.models.studies import StudyJob, StudyRecord, StudyRequest
from shared.studies.expansion import expand
from shared.studies.leaderboard import rank, row, study_status, to_csv, to_markdown
from shared.studies.store import StudyStore

router = APIRouter(prefix="/v1/studies", tags=["studies"], responses=PROBLEM_RESPONSES)


def get_studies(store: StoreDep, settings: SettingsDep) -> StudyStore:
    """The studies of the app's store."""
    return StudyStore(store, settings.default_queue)


StudiesDep = Annotated[StudyStore, Depends(get_studies)]


def valid_study(study_id: JobIdPath, studies: StudiesDep, tenant: TenantDep) -> StudyRecord:
    """The study named in the path; 404 for an unknown id or another tenant's."""
    check_job_id(study_id)
    study = studies.get(study_id)
    if study is None or study.tenant != tenant:
        raise JobNotFound(study_id)
    return study


StudyDep = Annotated[StudyRecord, Depends(valid_study)]


def view(study: StudyRecord, store: JobStore, studies: StudiesDep) -> StudyView:
    """The study with its jobs' statuses and its leaderboard, read now."""
    jobs = [store.get(job.job_id) for job in study.jobs]
    held = set(studies.pending(study.id))
    rows = [
        row(j.variant, job, store.epoch_records(job.id), study.objective)
        for j, job in zip(study.jobs, jobs, strict=True)
    ]
    counts: dict[str, int] = {}
    for job in jobs:
        key = "held" if job.id in held and job.status is JobStatus.QUEUED else job.status.value
        counts[key] = counts.get(key, 0) + 1
    base = f"/v1/studies/{study.id}"
    return StudyView(
        **study.model_dump(include={"id", "name", "objective", "max_parallel", "jobs"}),
        status="completed" if study_status(jobs) == "completed" else "running",
        counts=counts,
        leaderboard=rank(rows, study.objective),
        links=StudyLinks(self=base, report=f"{base}/report", curves=f"{base}/curves.png"),
    )


@router.post("", status_code=202, response_model=StudyView, summary="Start a study")
def create_study(
    request: StudyRequest,
    response: Response,
    store: StoreDep,
    studies: StudiesDep,
    celery: CeleryDep,
    settings: SettingsDep,
    tenant: TenantDep,
) -> StudyView:
    """Validate every variant, then create its jobs and send as many as the cap allows."""
    variants = expand(request, settings)
    for _, spec, _ in variants:
        DatasetStore(store, settings.artifacts_dir).check_spec(spec, tenant)
    if store.active_count(tenant) + len(variants) > settings.max_active_jobs_per_tenant:
        limit = settings.max_active_jobs_per_tenant
        raise TooManyRequests(
            f"{len(variants)} more jobs would pass the limit of {limit} queued or running", 30
        )
    study_id = new_job_id()
    jobs = [
        JobRecord.new(new_job_id(), tenant, spec, preset, StudyMembership(id=study_id, variant=name))
        for name, spec, preset in variants
    ]
    study = StudyRecord(
        id=study_id,
        tenant=tenant,
        name=request.name,
        objective=request.objective,
        max_parallel=request.max_parallel,
        created_at=utc_now(),
        jobs=[StudyJob(variant=job.study.variant, job_id=job.id) for job in jobs if job.study],
    )
    studies.create(study, jobs)
    for job in jobs[: request.max_parallel or len(jobs)]:
        enqueue(store, celery, job, job.spec.resources.queue or settings.default_queue)
    response.headers["Location"] = f"/v1/studies/{study_id}"
    return view(study, store, studies)


@router.get("", response_model=StudyPage, summary="List studies, newest first")
def list_studies(
    store: StoreDep,
    studies: StudiesDep,
    tenant: TenantDep,
    limit: Annotated[int, Query(ge=1, le=50)] = 10,
    cursor: Annotated[str | None, Query(pattern=JOB_ID_PATTERN)] = None,
) -> StudyPage:
    """A page of the caller's studies."""
    page, next_cursor = studies.page(tenant, limit, cursor)
    return StudyPage(items=[view(study, store, studies) for study in page], next_cursor=next_cursor)


@router.get("/{study_id}", response_model=StudyView, summary="Get a study and its leaderboard")
def get_study(study: StudyDep, store: StoreDep, studies: StudiesDep) -> StudyView:
    """Status, job counts and the leaderboard."""
    return view(study, store, studies)


@router.post("/{study_id}/cancel", status_code=202, response_model=StudyView, summary="Cancel a study")
def cancel_study(study: StudyDep, store: StoreDep, studies: StudiesDep) -> StudyView:
    """Cancel every job of the study that has not ended; held jobs are never sent."""
    studies.clear_pending(study.id)
    for job in study.jobs:
        with contextlib.suppress(Conflict):  # it had ended already
            cancel(store, job.job_id)
    return view(study, store, studies)


@router.get(
    "/{study_id}/report",
    response_class=Response,
    responses={200: {"content": {"text/csv": {}, "text/markdown": {}}, "description": "The leaderboard"}},
    summary="The leaderboard as CSV or Markdown",
)
def study_report(
    study: StudyDep,
    store: StoreDep,
    studies: StudiesDep,
    format: Annotated[Literal["csv", "markdown"], Query(description="`csv` or `markdown`.")] = "markdown",
) -> Response:
    """The leaderboard as a document."""
    rows = view(study, store, studies).leaderboard
    if format == "csv":
        return Response(to_csv(rows), media_type="text/csv")
    return Response(to_markdown(study, rows), media_type="text/markdown")


@router.get(
    "/{study_id}/curves.png",
    response_class=Response,
    responses={200: {"content": {"image/png": {}}, "description": "Validation curves of every variant"}},
    summary="Learning curves of the variants",
)
def study_curves(study: StudyDep, store: StoreDep) -> Response:
    """Validation accuracy and loss per epoch, one labelled line per variant."""
    series = [(job.variant, store.epoch_records(job.job_id)) for job in study.jobs]
    return Response(curves_png(study.name or f"study {study.id}", series), media_type="image/png")
