"""The live workers: queues, devices, and what they train."""

from fastapi import APIRouter, Request

from api.dependencies import StoreDep, TenantDep
from api.problems import PROBLEM_RESPONSES
from api.schemas import WorkerList
from api.workers_view import worker_views
from shared.ops.registry import WorkerRegistry

router = APIRouter(prefix="/v1/workers", tags=["workers"], responses=PROBLEM_RESPONSES)


@router.get("", response_model=WorkerList, summary="List the live workers")
def list_workers(request: Request, store: StoreDep, tenant: TenantDep) -> WorkerList:
    """Every live worker with its queues, backend, device, host and pid; a busy worker shows its job's
    id only when the job is the caller's."""
    registry: WorkerRegistry = request.app.state.registry
    return WorkerList(items=worker_views(registry.live(), store, tenant))
