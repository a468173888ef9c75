"""Studies: several variants as ordinary jobs, with a leaderboard, a report and learning curves."""

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Response

from api.curves import curves_png, progress_png
from api.dependencies import JobIdPath, ServicesDep, TenantDep, check_job_id
from api.problems import PROBLEM_RESPONSES, STUDY_INVALID_RESPONSE
from api.schemas import StudyLinks, StudyPage, StudyView
from api.services import Services
from shared.errors import JobNotFound
from shared.models.jobs import JOB_ID_PATTERN, JobRecord, JobStatus
from shared.models.studies import StudyRecord, StudyRequest
from shared.studies.creation import create_study as create
from shared.studies.leaderboard import rank, row, study_status, to_csv, to_markdown
from shared.studies.search_report import trials_csv
from shared.studies.trials import search_view

router = APIRouter(prefix="/v1/studies", tags=["studies"], responses=PROBLEM_RESPONSES)


def valid_study(study_id: JobIdPath, services: ServicesDep, tenant: TenantDep) -> StudyRecord:
    """The study named in the path; 404 for an unknown id or another tenant's."""
    check_job_id(study_id)
    study = services.studies.get(study_id)
    if study is None or study.tenant != tenant:
        raise JobNotFound(study_id)
    return study


StudyDep = Annotated[StudyRecord, Depends(valid_study)]


def view(study: StudyRecord, services: Services) -> StudyView:
    """The study with its jobs' statuses and its leaderboard, read now. A job past its retention
    (it had ended) counts as ``expired`` and leaves the leaderboard."""
    store = services.store
    held = set(services.studies.pending(study.id))
    counts: dict[str, int] = {}
    kept: list[tuple[str, JobRecord]] = []
    for member, job in zip(study.jobs, store.get_many(j.job_id for j in study.jobs), strict=True):
        if job is None:
            counts["expired"] = counts.get("expired", 0) + 1
            continue
        kept.append((member.variant, job))
        key = "held" if job.id in held and job.status is JobStatus.QUEUED else job.status.value
        counts[key] = counts.get(key, 0) + 1
    rows = [row(variant, job, store.epoch_records(job.id), study.objective) for variant, job in kept]
    base = f"/v1/studies/{study.id}"
    search = None
    if study.search is not None:
        search = search_view(
            study, services.search.trials(study), {job.id: job for _, job in kept}, services.search.storage
        )
    ended = study_status([job for _, job in kept]) == "completed" and (
        search is None or search.end_reason is not None
    )
    return StudyView(
        **study.model_dump(include={"id", "name", "objective", "max_parallel", "jobs"}),
        status="completed" if ended else "running",
        counts=counts,
        leaderboard=rank(rows, study.objective),
        search=search,
        links=StudyLinks(
            self=base,
            report=f"{base}/report",
            curves=f"{base}/curves.png",
            progress=f"{base}/progress.png" if search is not None else None,
        ),
    )


@router.post(
    "",
    operation_id="create_study",
    status_code=202,
    response_model=StudyView,
    responses=STUDY_INVALID_RESPONSE,
    summary="Start a study",
)
def create_study(
    request: StudyRequest, response: Response, services: ServicesDep, tenant: TenantDep
) -> StudyView:
    """Validate every variant, then create its jobs and send as many as the cap allows; or, for a
    `space`, start a search: its first trials, as many as `max_parallel` allows."""
    if request.space is not None:
        study = services.search.create(request, tenant)
    else:
        study = create(request, tenant, services.studies, services.datasets, services.settings)
    response.headers["Location"] = f"/v1/studies/{study.id}"
    return view(study, services)


@router.get("", operation_id="list_studies", response_model=StudyPage, summary="List studies, newest first")
def list_studies(
    services: ServicesDep,
    tenant: TenantDep,
    limit: Annotated[int, Query(ge=1, le=50)] = 10,
    cursor: Annotated[str | None, Query(pattern=JOB_ID_PATTERN)] = None,
) -> StudyPage:
    """A page of the caller's studies."""
    page, next_cursor = services.studies.page(tenant, limit, cursor)
    return StudyPage(items=[view(study, services) for study in page], next_cursor=next_cursor)


@router.get(
    "/{study_id}",
    operation_id="get_study",
    response_model=StudyView,
    summary="Get a study and its leaderboard",
)
def get_study(study: StudyDep, services: ServicesDep) -> StudyView:
    """Status, job counts and the leaderboard."""
    return view(study, services)


@router.post(
    "/{study_id}/cancel",
    operation_id="cancel_study",
    status_code=202,
    response_model=StudyView,
    summary="Cancel a study",
)
def cancel_study(study: StudyDep, services: ServicesDep) -> StudyView:
    """Cancel every job of the study that has not ended; held jobs are never sent, and a search
    asks for no more trials."""
    if study.search is not None:
        services.search.cancel(study)
    else:
        services.studies.cancel(study)
    return view(study, services)


@router.get(
    "/{study_id}/report",
    operation_id="get_study_report",
    response_class=Response,
    responses={
        200: {
            "content": {"text/csv": {}, "text/markdown": {}},
            "description": "The leaderboard, or a search's trials",
        }
    },
    summary="The leaderboard as CSV or Markdown, a search's trials as CSV",
)
def get_study_report(
    study: StudyDep,
    services: ServicesDep,
    format: Annotated[
        Literal["csv", "markdown", "trials-csv"],
        Query(
            description="`markdown` (with a search's summary, best trial, importances and trials), `csv` "
            "(the leaderboard), or `trials-csv` (a search's trials, a column per parameter; a study of "
            "variants: the header alone)."
        ),
    ] = "markdown",
) -> Response:
    """The leaderboard as a document; for a search, its trials too."""
    shown = view(study, services)
    if format == "csv":
        return Response(to_csv(shown.leaderboard), media_type="text/csv")
    if format == "trials-csv":
        return Response(trials_csv(shown.search), media_type="text/csv")
    return Response(to_markdown(study, shown.leaderboard, shown.search), media_type="text/markdown")


@router.get(
    "/{study_id}/progress.png",
    operation_id="get_search_progress",
    response_class=Response,
    responses={200: {"content": {"image/png": {}}, "description": "The best value against epochs spent"}},
    summary="A search's best value against the epochs it spent",
)
def get_search_progress(study: StudyDep, services: ServicesDep) -> Response:
    """The best objective value reached so far against the epochs the search's trials trained,
    in the order the epochs were recorded (a study of variants: the same, over its variants)."""
    series = [services.store.epoch_records(job.job_id) for job in study.jobs]
    return Response(
        progress_png(study.name or f"study {study.id}", series, study.objective), media_type="image/png"
    )


@router.get(
    "/{study_id}/curves.png",
    operation_id="get_study_curves",
    response_class=Response,
    responses={200: {"content": {"image/png": {}}, "description": "Validation curves of every variant"}},
    summary="Learning curves of the variants",
)
def get_study_curves(study: StudyDep, services: ServicesDep) -> Response:
    """Validation accuracy and loss per epoch, one labelled line per variant."""
    series = [(job.variant, services.store.epoch_records(job.job_id)) for job in study.jobs]
    return Response(curves_png(study.name or f"study {study.id}", series), media_type="image/png")
