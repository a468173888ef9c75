"""Webhooks: the tenant's signing secret, and each job's delivery log."""

from typing import Annotated

from fastapi import APIRouter, Depends

from api.dependencies import JobDep, StoreDep, TenantDep
from api.problems import PROBLEM_RESPONSES
from api.schemas import DeliveryLog, WebhookSummary
from shared.models.jobs import JobRecord
from shared.models.webhooks import WebhookSecret
from shared.webhooks.claims import DeliveryClaims
from shared.webhooks.secrets import WebhookSecrets

router = APIRouter(prefix="/v1", tags=["webhooks"], responses=PROBLEM_RESPONSES)


def get_secrets(store: StoreDep) -> WebhookSecrets:
    """The tenants' webhook secrets, in the store's Redis."""
    return WebhookSecrets(store.redis, store.keys)


def get_claims(store: StoreDep) -> DeliveryClaims:
    """The webhook outbox, read side."""
    return DeliveryClaims(store.redis, store.keys)


SecretsDep = Annotated[WebhookSecrets, Depends(get_secrets)]
ClaimsDep = Annotated[DeliveryClaims, Depends(get_claims)]


@router.get("/webhooks/secret", response_model=WebhookSecret, summary="Get the webhook signing secret")
def get_secret(secrets: SecretsDep, tenant: TenantDep) -> WebhookSecret:
    """The tenant's secret, which signs every webhook request; made on first use."""
    return secrets.get(tenant)


@router.post(
    "/webhooks/secret/rotate", response_model=WebhookSecret, summary="Replace the webhook signing secret"
)
def rotate_secret(secrets: SecretsDep, tenant: TenantDep) -> WebhookSecret:
    """A new secret; every request from now on, retries of earlier events included, is signed with it."""
    return secrets.rotate(tenant)


@router.get(
    "/jobs/{job_id}/deliveries", response_model=DeliveryLog, summary="List a job's webhook deliveries"
)
def list_deliveries(job: JobDep, claims: ClaimsDep) -> DeliveryLog:
    """Each delivery of the job's events, oldest first, with its attempts and outcome."""
    return DeliveryLog(job_id=job.id, items=[d.public() for d in claims.deliveries(job.id)])


def webhook_summary(claims: DeliveryClaims, job: JobRecord) -> WebhookSummary | None:
    """The job's delivery counters, when its spec asks for webhooks."""
    notify = job.spec.notify
    if notify is None:
        return None
    return WebhookSummary.of(notify.url, notify.events, claims.counts(job.id))
