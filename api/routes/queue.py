"""The queues as the caller sees them: their slots, and its own waiting and running jobs."""

from fastapi import APIRouter

from api.dependencies import ServicesDep, TenantDep
from api.problems import PROBLEM_RESPONSES
from shared.models.queue import QueueSummary

router = APIRouter(prefix="/v1/queue", tags=["queue"], responses=PROBLEM_RESPONSES)


@router.get("", operation_id="get_queue", response_model=QueueSummary, summary="Summarize the queues")
def get_queue(services: ServicesDep, tenant: TenantDep) -> QueueSummary:
    """Per queue: its slots (the live workers that take it), the caller's jobs waiting and released
    at each priority, and its waiting jobs in the order they start, each with its position among
    every tenant's. Other tenants' jobs are counted in positions only."""
    return services.queue.summary(tenant)
