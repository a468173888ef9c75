"""Liveness and readiness."""

from fastapi import APIRouter, Request, Response
from redis.exceptions import RedisError

from api.schemas import Health, Readiness
from shared.registry import WorkerRegistry

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health, summary="Liveness")
def healthz() -> Health:
    """The API process is up."""
    return Health(status="ok")


@router.get(
    "/readyz",
    response_model=Readiness,
    responses={503: {"model": Readiness, "description": "Redis cannot be reached"}},
    summary="Readiness",
)
def readyz(request: Request, response: Response) -> Readiness:
    """Ready when Redis answers; also counts the live workers on each queue."""
    registry: WorkerRegistry = request.app.state.registry
    try:
        workers = registry.live()
    except RedisError:
        response.status_code = 503
        return Readiness(ready=False, redis="unreachable", workers={})
    per_queue: dict[str, int] = {}
    for worker in workers:
        for queue in worker.queues:
            per_queue[queue] = per_queue.get(queue, 0) + 1
    return Readiness(ready=True, redis="ok", workers=per_queue)
