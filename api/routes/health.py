"""Liveness, open to anyone; readiness, for the operator (it names hosts, processes and devices)."""

import logging

from fastapi import APIRouter, Depends, Response
from redis.exceptions import RedisError

from api.dependencies import ServicesDep, require_operator
from api.problems import OPERATOR_RESPONSE
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
    dependencies=[Depends(require_operator)],
    responses={
        **OPERATOR_RESPONSE,
        503: {"model": Readiness, "description": "Redis cannot be reached, or the artifact store used"},
    },
    summary="Readiness (operator token)",
)
def get_readiness(services: ServicesDep, response: Response) -> Readiness:
    """Ready when Redis answers and the artifact store can be used (`artifacts`); also lists the
    live workers (without job ids), counts them per queue, and says how Redis meets the service's
    contract (`redis_contract`: an evicting Redis is not ok, though the API stays ready). Needs
    the operator token (`OPERATOR_TOKEN`)."""
    auth = "enabled" if services.settings.auth_enabled else "disabled"
    if auth == "disabled":
        log.warning("AUTH_ENABLED is false: the API accepts requests without a key")
    try:
        workers = services.workers.live()
        contract = services.redis_contract.current()
    except RedisError:
        response.status_code = 503
        return Readiness(ready=False, redis="unreachable", auth=auth, workers={})
    artifacts = services.artifacts_watch.current()
    if not artifacts.ok:
        response.status_code = 503
    per_queue: dict[str, int] = {}
    for worker in workers:
        for queue in worker.queues:
            per_queue[queue] = per_queue.get(queue, 0) + 1
    # The operator is no tenant: no job is named.
    listed = worker_views(workers, services.store, tenant=None)
    return Readiness(
        ready=artifacts.ok,
        redis="ok",
        auth=auth,
        workers=per_queue,
        live_workers=listed,
        artifacts=artifacts,
        redis_contract=contract,
    )
