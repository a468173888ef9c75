"""``GET /metrics``: the Prometheus exposition of ``api.prometheus``."""

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from api.dependencies import ServicesDep

router = APIRouter(tags=["health"])


@router.get(
    "/metrics",
    operation_id="get_prometheus_metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "Prometheus text format"}},
    summary="Prometheus metrics",
)
def get_prometheus_metrics(services: ServicesDep) -> Response:
    """Jobs by status, submissions and outcomes, queue depths, live workers, epoch durations
    and this API process's request latency."""
    return Response(generate_latest(services.prometheus), media_type=CONTENT_TYPE_LATEST)
