"""The served app, ``uvicorn api.main:app``: the FastAPI app behind the one route that is
answered before it (the metrics poll, ``api.routes.metrics``), with the middleware and error
handlers that every answer shares."""

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI
from redis.exceptions import RedisError
from starlette.applications import Starlette
from starlette.routing import Mount

from api.dependencies import get_tenant
from api.middleware import Answers, BodyLimit, ConfiguredCORS
from api.problems import install_problem_handlers
from api.routes import (
    datasets,
    docs,
    health,
    jobs,
    metrics,
    models,
    presets,
    prometheus,
    queue,
    studies,
    ui,
    webhooks,
    workers,
)
from api.services import SERVICES, Services
from shared.logs import configure_logging
from shared.ops.redis_contract import log_findings
from shared.settings import get_settings
from shared.storage.base import StoreUnavailable
from shared.storage.probe import Handshake

log = logging.getLogger(__name__)

DESCRIPTION = """Train regularized Keras models on request.

Submit a job spec (or one of the article's presets with overrides), follow its per-epoch
records, cancel it, and download the trained model. Errors are `application/problem+json`.
"""


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Services]]:
    """Connect to Redis and the broker with the settings of this process; every request's scope
    carries the services in its state."""
    settings = get_settings()
    configure_logging(settings.log_format, settings.log_level)
    services = Services.start(settings)
    if not settings.auth_enabled:
        log.warning("AUTH_ENABLED is false: the API accepts requests without a key; use it only locally")
    elif settings.operator_token is None:
        log.warning("OPERATOR_TOKEN is not set: /metrics and /readyz refuse every request")
    check_redis_contract(services)
    check_artifacts(services)
    # What exists now (modules, the app, its routes and models) lives as long as the process.
    # Frozen, it is no longer walked by every full garbage collection: a pause of tens of
    # milliseconds otherwise, which every request in flight waits out (the p99 under load).
    gc.freeze()
    yield {SERVICES: services}
    await services.close()


def check_redis_contract(services: Services) -> None:
    """Log how Redis falls short of the service's contract, if it answers; the API starts either
    way (workers are the ones that refuse an evicting Redis), and /readyz reports it."""
    try:
        log_findings(services.redis_contract.current(), log)
    except RedisError as exc:
        log.warning("Redis did not answer at start (%s); /readyz reports its contract once it does", exc)


def check_artifacts(services: Services) -> None:
    """Probe the artifact store and leave the API's probe object that workers check they see;
    the API starts either way, and /readyz says not ready while the store cannot be used."""
    if not services.artifacts_watch.current().ok:
        return
    try:
        Handshake(services.artifacts, services.store.redis, services.store.keys).publish()
    except (RedisError, StoreUnavailable) as exc:
        log.warning("the API's probe object was not left for the workers (%s); it is at the next start", exc)


def create_app() -> Starlette:
    """A new served app; settings are read when it starts, not when it is made."""
    app = Starlette(routes=[metrics.POLL_ROUTE, Mount("", app=create_api())], lifespan=lifespan)
    install_problem_handlers(app)
    # Outermost last: every answer is timed and given its headers, CORS answers preflights, then
    # bodies are limited.
    for middleware in (BodyLimit, ConfiguredCORS, Answers):
        app.add_middleware(middleware)
    return app


def create_api() -> FastAPI:
    """The FastAPI app: every route, the OpenAPI document and its pages. It runs inside the served
    app, whose lifespan gives it its services and whose middleware wraps it."""
    app = FastAPI(
        title=docs.TITLE,
        version="0.1.0",
        description=DESCRIPTION,
        openapi_url=docs.OPENAPI_PATH,
        # Served by api.routes.docs, from the service's own copies of their scripts.
        docs_url=None,
        redoc_url=None,
    )
    install_problem_handlers(app)
    # The metrics poll checks the caller's key in the same Redis round trip as its page.
    app.include_router(metrics.router)
    for module in (jobs, models, presets, studies, datasets, webhooks, workers, queue):
        app.include_router(module.router, dependencies=[Depends(get_tenant)])
    app.include_router(health.router)
    app.include_router(ui.router)
    app.mount(ui.STATIC_PATH, ui.static_files(), name="ui-static")
    app.include_router(docs.router)
    app.mount(docs.ASSETS_PATH, docs.static_files(), name="docs-assets")
    app.include_router(prometheus.router)
    return app


app = create_app()
