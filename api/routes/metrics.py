"""Per-epoch metrics of a job, read without parsing its history."""

from typing import Annotated

from fastapi import APIRouter, Query, Response

from api.dependencies import JobIdPath, SettingsDep, StoreDep, TenantDep, check_job_id
from api.problems import PROBLEM_RESPONSES
from api.schemas import MetricsPage
from shared.errors import JobNotFound
from shared.spec import MAX_EPOCHS

router = APIRouter(prefix="/v1/jobs", tags=["jobs"], responses=PROBLEM_RESPONSES)


@router.get("/{job_id}/metrics", response_model=MetricsPage, summary="Epoch records after a cursor")
def job_metrics(
    job_id: JobIdPath,
    store: StoreDep,
    tenant: TenantDep,
    settings: SettingsDep,
    after_epoch: Annotated[
        int, Query(ge=0, le=MAX_EPOCHS, description="Return only epochs after this one.")
    ] = 0,
    limit: Annotated[
        int | None, Query(ge=1, le=MAX_EPOCHS, description="Most records to return (capped).")
    ] = None,
) -> Response:
    """The epoch records after `after_epoch`, oldest first; poll again with `last_epoch`."""
    check_job_id(job_id)
    page_limit = min(limit or settings.metrics_page_limit, settings.metrics_page_limit)
    owner, status, records, total = store.metrics_page(job_id, after_epoch, page_limit)
    if owner != tenant:
        raise JobNotFound(job_id)
    last_epoch = after_epoch + len(records)
    # The records are stored as JSON already: splice them in rather than parse and re-encode.
    body = (
        f'{{"job_id":"{job_id}","status":"{status.value}","records":[{",".join(records)}],'
        f'"last_epoch":{last_epoch},"has_more":{"true" if total > last_epoch else "false"}}}'
    )
    return Response(body, media_type="application/json")
