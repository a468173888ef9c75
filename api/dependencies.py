"""Request dependencies as ``Annotated`` aliases: the app's services, the caller's tenant, the
operator's token, and get-or-404 jobs.

The dependencies that every request solves are coroutines: FastAPI runs a plain function
dependency in its thread pool, and such a hop costs more than the request's Redis read.
"""

import hmac
import re
import time
from typing import Annotated

from fastapi import Depends, Path, Request
from fastapi.security import HTTPBearer
from fastapi.security.utils import get_authorization_scheme_param
from starlette.types import Scope

from api.services import Services, services_of
from shared.auth.keys import Caller, FailureLimit
from shared.errors import JobNotFound, TooManyRequests, Unauthorized
from shared.jobs.feed import AddressThrottled, FeedRead, PageQuery
from shared.models.jobs import JOB_ID_PATTERN, JobRecord
from shared.settings import Settings

DEFAULT_TENANT = "default"
_JOB_ID = re.compile(JOB_ID_PATTERN)


async def get_services(request: Request) -> Services:
    """The app's services."""
    return services_of(request.scope)


ServicesDep = Annotated[Services, Depends(get_services)]


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, read as FastAPI's ``HTTPBearer``
    reads it; None for any other header, or none."""
    scheme, token = get_authorization_scheme_param(authorization)
    return token if authorization and token and scheme.lower() == "bearer" else None


class BearerToken(HTTPBearer):
    """The request's API key (its first ``Authorization`` header), or None: ``bearer_token`` as a
    dependency that the OpenAPI document shows as the bearer scheme."""

    async def __call__(self, request: Request) -> str | None:  # type: ignore[override]
        return bearer_token(request.headers.get("Authorization"))


# Named as FastAPI names its own bearer scheme, as the OpenAPI document always did.
BEARER = BearerToken(
    auto_error=False, scheme_name="HTTPBearer", description="An API key: `Authorization: Bearer kj_...`."
)
BearerDep = Annotated[str | None, Depends(BEARER)]


async def read_as_caller(
    services: Services, token: str | None, client: str, page: PageQuery | None = None
) -> tuple[Caller, FeedRead]:
    """Check the caller's key (counting the request in its rate window once its secret checked
    out, else as a failure of the ``client`` address) and read ``page``, in one round trip: the
    caller and what was read. 401 without a valid key, 429 past the key's rate or past the
    address's failures."""
    settings = services.settings
    if not settings.auth_enabled:
        return Caller(DEFAULT_TENANT, DEFAULT_TENANT, 0), await services.feed.read(None, page)
    if token is None:
        raise Unauthorized("this request needs an API key: Authorization: Bearer <key>")
    failures = FailureLimit(settings.auth_failure_limit, settings.auth_failure_window_seconds)
    try:
        caller, found = await services.feed.read_as(
            services.api_keys, token, settings.rate_limit_window_seconds, client, failures, page
        )
    except AddressThrottled:
        message = f"more than {failures.limit} requests with keys that did not check out from this address"
        raise TooManyRequests(message, retry_after=failures.seconds) from None
    if caller is None or found is None:
        raise Unauthorized("the API key is not valid, or has been revoked")
    if caller.requests_in_window > settings.rate_limit_requests:
        raise past_the_rate(settings)
    return caller, found


def past_the_rate(settings: Settings) -> TooManyRequests:
    """The 429 of a key past its rate limit, with the seconds to the next window."""
    window = settings.rate_limit_window_seconds
    message = f"more than {settings.rate_limit_requests} requests in {window} s with this key"
    return TooManyRequests(message, retry_after=window - int(time.time()) % window)


def client_address(scope: Scope) -> str:
    """The address the request came from (as the server saw it, or as a trusted proxy said)."""
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


async def get_caller(request: Request, services: ServicesDep, token: BearerDep) -> Caller:
    """Whose API key signs the request (401 without a valid one; 429 past the rate)."""
    caller, _ = await read_as_caller(services, token, client_address(request.scope))
    return caller


CallerDep = Annotated[Caller, Depends(get_caller)]


async def get_tenant(caller: CallerDep) -> str:
    """The tenant of the request's API key (its key checked once a request, by ``get_caller``)."""
    return caller.tenant


TenantDep = Annotated[str, Depends(get_tenant)]

OPERATOR = BearerToken(
    auto_error=False,
    scheme_name="OperatorToken",
    description="The operator token, the `OPERATOR_TOKEN` setting: `Authorization: Bearer <token>`.",
)


async def require_operator(services: ServicesDep, token: Annotated[str | None, Depends(OPERATOR)]) -> None:
    """Let only the operator token through (anyone, with authentication off); 401 otherwise.

    The token is a setting, checked in this process: ``/readyz`` must answer while Redis is away,
    and a tenant's key (which Redis holds) must not open the deployment's figures."""
    settings = services.settings
    if not settings.auth_enabled:
        return
    expected = settings.operator_token
    if token is None or expected is None or not _same(token, expected.get_secret_value()):
        raise Unauthorized(
            "this route needs the operator token (OPERATOR_TOKEN): Authorization: Bearer <token>"
        )


def _same(presented: str, expected: str) -> bool:
    # In constant time, so the answer's timing tells nothing about how much of a guess was right.
    return hmac.compare_digest(presented.encode(), expected.encode())


JobIdPath = Annotated[str, Path(description="The job's id, as `POST /v1/jobs` returned it.")]


def check_job_id(job_id: str) -> None:
    """A malformed id names no job: 404, like an unknown one."""
    if not _JOB_ID.fullmatch(job_id):
        raise JobNotFound(job_id)


def valid_job(job_id: JobIdPath, services: ServicesDep, tenant: TenantDep) -> JobRecord:
    """The job named in the path; 404 when the id is malformed, unknown or another tenant's."""
    check_job_id(job_id)
    record = services.store.get(job_id)
    if record.tenant != tenant:
        raise JobNotFound(job_id)
    return record


JobDep = Annotated[JobRecord, Depends(valid_job)]
