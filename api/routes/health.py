"""Liveness and readiness."""

import logging

from fastapi import APIRouter, Response
from redis.exceptions import RedisError

from api.dependencies import ServicesDep
from api.schemas import Health, Readiness
from api.workers_view import worker_views

log = logging.getLogger(__name__)
router = APIRouter(tags=["health"])


@router.get("/healthz", operation_id="get_liveness", response_model=Health, summary="Liveness")
def get_liveness() -> Health:
    """The API process is up."""
    return Health(status="ok")


@router.get(
    "/readyz",
    operation_id="get_readiness",
    response_model=Readiness,
    responses={503: {"model": Readiness, "description": "Redis cannot be reached"}},
    summary="Readiness",
)
def get_readiness(services: ServicesDep, response: Response) -> Readiness:
    """Ready when Redis answers; also lists the live workers (without job ids) and counts them per queue."""
    auth = "enabled" if services.settings.auth_enabled else "disabled"
    if auth == "disabled":
        log.warning("AUTH_ENABLED is false: the API accepts requests without a key")
    try:
        workers = services.workers.live()
    except RedisError:
        response.status_code = 503
        return Readiness(ready=False, redis="unreachable", auth=auth, workers={})
    per_queue: dict[str, int] = {}
    for worker in workers:
        for queue in worker.queues:
            per_queue[queue] = per_queue.get(queue, 0) + 1
    # No tenant here: this route takes no API key, so it names no job.
    listed = worker_views(workers, services.store, tenant=None)
    return Readiness(ready=True, redis="ok", auth=auth, workers=per_queue, live_workers=listed)
