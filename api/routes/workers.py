"""The live workers: queues, devices, and what they train."""

from fastapi import APIRouter

from api.dependencies import ServicesDep, TenantDep
from api.problems import PROBLEM_RESPONSES
from api.schemas import WorkerList
from api.workers_view import worker_views

router = APIRouter(prefix="/v1/workers", tags=["workers"], responses=PROBLEM_RESPONSES)


@router.get("", operation_id="list_workers", response_model=WorkerList, summary="List the live workers")
def list_workers(services: ServicesDep, tenant: TenantDep) -> WorkerList:
    """Every live worker with its queues, backend, device, host and pid; a busy worker shows its job's
    id only when the job is the caller's."""
    return WorkerList(items=worker_views(services.workers.live(), services.store, tenant))
