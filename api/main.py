"""The FastAPI app: ``uvicorn api.main:app``."""

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI

from api.dependencies import get_tenant
from api.middleware import BodyLimit, ConfiguredCORS, RequestMetrics, SecurityHeaders
from api.problems import install_problem_handlers
from api.routes import (
    datasets,
    health,
    jobs,
    metrics,
    models,
    presets,
    prometheus,
    studies,
    ui,
    webhooks,
    workers,
)
from api.services import SERVICES, Services
from shared.logs import configure_logging
from shared.settings import get_settings

log = logging.getLogger(__name__)

DESCRIPTION = """Train regularized Keras models on request.

Submit a job spec (or one of the article's presets with overrides), follow its per-epoch
records, cancel it, and download the trained model. Errors are `application/problem+json`.
"""


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Services]]:
    """Connect to Redis and the broker with the settings of this process; every request's scope
    carries the services in its state."""
    settings = get_settings()
    configure_logging(settings.log_format, settings.log_level)
    services = Services.start(settings)
    if not settings.auth_enabled:
        log.warning("AUTH_ENABLED is false: the API accepts requests without a key; use it only locally")
    # What exists now (modules, the app, its routes and models) lives as long as the process.
    # Frozen, it is no longer walked by every full garbage collection: a pause of tens of
    # milliseconds otherwise, which every request in flight waits out (the p99 under load).
    gc.freeze()
    yield {SERVICES: services}
    await services.close()


def create_app() -> FastAPI:
    """A new app; settings are read when it starts, not when it is made."""
    app = FastAPI(title="keras-jobs", version="0.1.0", description=DESCRIPTION, lifespan=lifespan)
    install_problem_handlers(app)
    # The metrics poll checks the caller's key in the same Redis round trip as its page.
    app.include_router(metrics.router)
    for module in (jobs, models, presets, studies, datasets, webhooks, workers):
        app.include_router(module.router, dependencies=[Depends(get_tenant)])
    app.include_router(health.router)
    app.include_router(ui.router)
    app.mount(ui.STATIC_PATH, ui.static_files(), name="ui-static")
    app.include_router(prometheus.router)
    # Outermost last: every request is timed, CORS answers preflights, then headers are added,
    # then bodies are limited.
    for middleware in (BodyLimit, SecurityHeaders, ConfiguredCORS, RequestMetrics):
        app.add_middleware(middleware)
    return app


app = create_app()
