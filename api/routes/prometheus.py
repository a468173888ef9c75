"""``GET /metrics``: the Prometheus exposition of ``api.prometheus``, for the operator."""

from fastapi import APIRouter, Depends, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from api.dependencies import ServicesDep, require_operator
from api.problems import OPERATOR_RESPONSE

router = APIRouter(tags=["health"])


@router.get(
    "/metrics",
    operation_id="get_prometheus_metrics",
    response_class=Response,
    dependencies=[Depends(require_operator)],
    responses={
        200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "Prometheus text format"},
        **OPERATOR_RESPONSE,
    },
    summary="Prometheus metrics (operator token)",
)
def get_prometheus_metrics(services: ServicesDep) -> Response:
    """Jobs by status, submissions and outcomes, queue depths, live workers, epoch durations
    and this API process's request latency. Needs the operator token (`OPERATOR_TOKEN`)."""
    return Response(generate_latest(services.prometheus), media_type=CONTENT_TYPE_LATEST)
