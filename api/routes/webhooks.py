"""Webhooks: the tenant's signing secret, and each job's delivery log."""

from fastapi import APIRouter

from api.dependencies import JobDep, ServicesDep, TenantDep
from api.problems import PROBLEM_RESPONSES
from shared.models.webhooks import DeliveryLog, WebhookSecret

router = APIRouter(prefix="/v1", tags=["webhooks"], responses=PROBLEM_RESPONSES)


@router.get(
    "/webhooks/secret",
    operation_id="get_webhook_secret",
    response_model=WebhookSecret,
    summary="Get the webhook signing secret",
)
def get_webhook_secret(services: ServicesDep, tenant: TenantDep) -> WebhookSecret:
    """The tenant's secret, which signs every webhook request; made on first use."""
    return services.webhook_secrets.get(tenant)


@router.post(
    "/webhooks/secret/rotate",
    operation_id="rotate_webhook_secret",
    response_model=WebhookSecret,
    summary="Replace the webhook signing secret",
)
def rotate_webhook_secret(services: ServicesDep, tenant: TenantDep) -> WebhookSecret:
    """A new secret; every request from now on, retries of earlier events included, is signed with it."""
    return services.webhook_secrets.rotate(tenant)


@router.get(
    "/jobs/{job_id}/deliveries",
    operation_id="list_deliveries",
    response_model=DeliveryLog,
    summary="List a job's webhook deliveries",
)
def list_deliveries(job: JobDep, services: ServicesDep) -> DeliveryLog:
    """Each delivery of the job's events, oldest first, with its attempts and outcome."""
    return DeliveryLog(job_id=job.id, items=[d.public() for d in services.deliveries.deliveries(job.id)])
