"""Errors as RFC 9457 problem documents: the one place that maps exceptions to HTTP."""

import logging
from collections.abc import Sequence
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from kombu.exceptions import OperationalError as BrokerError
from pydantic import BaseModel, Field
from redis.exceptions import BusyLoadingError, OutOfMemoryError, ReadOnlyError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from starlette.applications import Starlette
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import BaseRoute, Match
from starlette.types import Scope

from shared.errors import (
    Conflict,
    FieldError,
    JobNotFound,
    ServiceUnavailable,
    SpecInvalid,
    TooManyRequests,
    Unauthorized,
    field_error,
)

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
_LOCATIONS = frozenset({"body", "query", "path", "header", "cookie"})


class FieldProblem(BaseModel):
    field: str = Field(description="Dotted path of the field (`regularization.dropout`).")
    location: str = Field(description="Where the field was: `body`, `query`, `path` or `header`.")
    message: str
    type: str


class Problem(BaseModel):
    """An error (RFC 9457)."""

    type: str
    title: str
    status: int
    detail: str
    instance: str
    errors: list[FieldProblem] | None = None


def problem_response(description: str) -> dict[str, Any]:
    """An OpenAPI response entry for a problem document."""
    schema = {"$ref": "#/components/schemas/Problem"}
    return {"model": Problem, "content": {PROBLEM_JSON: {"schema": schema}}, "description": description}


CONFLICT_RESPONSE: dict[int | str, dict[str, Any]] = {
    409: problem_response("The request does not fit the job's state")
}
OPERATOR_RESPONSE: dict[int | str, dict[str, Any]] = {401: problem_response("No valid operator token")}
# What a spec is held to past its JSON Schema, when it is submitted: the 422s a valid-looking one may get.
SPEC_RULES = (
    "its dataset (a built-in, or an upload of the tenant's), its network planned on the dataset's shape "
    "(each layer buildable, at most MAX_MODEL_PARAMETERS trainable parameters), its metrics and "
    "augmentation against the dataset's task and kind, the service's limits (MAX_EPOCHS, MAX_BATCH_SIZE, "
    "MAX_RUNTIME_SECONDS_LIMIT), mixed precision against the queue's device, and its webhook's host "
    "against WEBHOOK_ALLOW_PRIVATE"
)
SPEC_INVALID_RESPONSE: dict[int | str, dict[str, Any]] = {
    422: problem_response(f"Invalid spec: a field against the schema, or {SPEC_RULES}")
}
STUDY_INVALID_RESPONSE: dict[int | str, dict[str, Any]] = {
    422: problem_response(
        "Invalid study: a field against the schema; a grid path inside another or more than 64 "
        f"variants; or a variant's spec (its base with its overrides or grid values) against the "
        f"schema or {SPEC_RULES}"
    )
}
UPLOAD_INVALID_RESPONSE: dict[int | str, dict[str, Any]] = {
    422: problem_response(
        "Not a dataset the service reads: the files are read as an .npz, IDX files, a zip of IDX files, "
        "image folders or PNGs with a CSV of labels, or a CSV table, and every image and label is checked"
    )
}
PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: problem_response(text)
    for code, text in {
        401: "No valid API key",
        404: "No such job",
        413: "Request body too large",
        422: "Invalid request",
        429: "Rate limit or quota reached",
        503: "Redis unavailable",
    }.items()
}


def problem(request: Request, status: int, code: str, title: str, detail: str, **extra: Any) -> JSONResponse:
    """A problem+json response."""
    body = Problem(
        type=f"urn:keras-jobs:problem:{code}",
        title=title,
        status=status,
        detail=detail,
        instance=request.url.path,
        **extra,
    )
    return JSONResponse(body.model_dump(exclude_none=True), status_code=status, media_type=PROBLEM_JSON)


def _field_problems(errors: Sequence[FieldError]) -> list[FieldProblem]:
    return [FieldProblem(field=e.field, location=e.location, message=e.message, type=e.type) for e in errors]


def _invalid(request: Request, problems: list[FieldProblem]) -> JSONResponse:
    detail = "; ".join(f"{p.field}: {p.message}" for p in problems)
    return problem(request, 422, "validation-error", "Invalid request", detail, errors=problems)


async def _request_invalid(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    problems = []
    for detail in exc.errors():
        loc = tuple(detail["loc"])
        location = str(loc[0]) if loc and loc[0] in _LOCATIONS else "body"
        error = field_error(detail, loc_prefix_len=1 if loc and loc[0] in _LOCATIONS else 0)
        # An unparsable body has no field: its location holds the character offset.
        field = location if error.field == "body" or error.type == "json_invalid" else error.field
        problems.append(FieldProblem(field=field, location=location, message=error.message, type=error.type))
    return _invalid(request, problems)


async def _spec_invalid(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, SpecInvalid)
    return _invalid(request, _field_problems(exc.errors))


async def _not_found(request: Request, exc: Exception) -> JSONResponse:
    return problem(request, 404, "not-found", "Not found", str(exc))


async def _conflict(request: Request, exc: Exception) -> JSONResponse:
    return problem(request, 409, "conflict", "Conflict", str(exc))


async def _unauthorized(request: Request, exc: Exception) -> JSONResponse:
    response = problem(request, 401, "unauthorized", "Unauthorized", str(exc))
    response.headers["WWW-Authenticate"] = "Bearer"
    return response


async def _too_many(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, TooManyRequests)
    response = problem(request, 429, "too-many-requests", "Too many requests", str(exc))
    response.headers["Retry-After"] = str(exc.retry_after)
    return response


async def _unavailable(request: Request, exc: Exception) -> JSONResponse:
    log.warning("unavailable on %s: %s: %s", request.url.path, type(exc).__name__, exc)
    detail = str(exc) if isinstance(exc, ServiceUnavailable) else "the job store cannot be reached"
    response = problem(request, 503, "unavailable", "Service unavailable", detail)
    response.headers["Retry-After"] = "5"
    return response


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 400:  # FastAPI's answer to a body it cannot decode: invalid, like bad JSON
        unreadable = FieldProblem(field="body", location="body", message=str(exc.detail), type="json_invalid")
        return _invalid(request, [unreadable])
    title = {404: "Not found", 405: "Method not allowed"}.get(exc.status_code, "Request refused")
    response = problem(request, exc.status_code, "http-error", title, str(exc.detail))
    response.headers.update(exc.headers or {})
    if exc.status_code == 405:
        response.headers["Allow"] = ", ".join(allowed_methods(request.scope))
    return response


HTTP_METHODS = ("DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT")


def allowed_methods(scope: Scope) -> list[str]:
    """Every method some route of the app serves on the request's path. Starlette's 405 names
    only the methods of the first route whose path matched, though a path may have several (GET
    and POST of ``/v1/jobs`` are two routes): each method is tried against every route."""
    # The app that raised the 405 (the FastAPI app inside the served one): its routes.
    routes: list[BaseRoute] = getattr(getattr(scope.get("app"), "router", None), "routes", [])
    return [
        method
        for method in HTTP_METHODS
        if any(route.matches({**scope, "method": method})[0] is Match.FULL for route in routes)
    ]


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return problem(request, 500, "internal-error", "Internal error", "the server failed; the error is logged")


def install_problem_handlers(app: Starlette) -> None:
    """Answer every error, expected or not, with a problem document and no traceback."""
    app.add_exception_handler(RequestValidationError, _request_invalid)
    app.add_exception_handler(SpecInvalid, _spec_invalid)
    app.add_exception_handler(JobNotFound, _not_found)
    app.add_exception_handler(Conflict, _conflict)
    app.add_exception_handler(Unauthorized, _unauthorized)
    app.add_exception_handler(TooManyRequests, _too_many)
    # Redis unreachable, slow, loading, read-only or full; the broker refusing a message.
    unavailable_errors = (
        ServiceUnavailable,
        RedisConnectionError,
        RedisTimeoutError,
        BusyLoadingError,
        ReadOnlyError,
        OutOfMemoryError,
        BrokerError,
    )
    for unavailable in unavailable_errors:
        app.add_exception_handler(unavailable, _unavailable)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)
