"""``GET /metrics``: the Prometheus exposition of ``api.prometheus``."""

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

router = APIRouter(tags=["health"])


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "Prometheus text format"}},
    summary="Prometheus metrics",
)
def prometheus_metrics(request: Request) -> Response:
    """Jobs by status, submissions and outcomes, queue depths, live workers, epoch durations
    and this API process's request latency."""
    return Response(generate_latest(request.app.state.prometheus), media_type=CONTENT_TYPE_LATEST)
