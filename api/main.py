"""The FastAPI app: ``uvicorn api.main:app``."""

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI
from prometheus_client import CollectorRegistry
from starlette.types import Receive, Scope, Send

from api.dependencies import get_tenant
from api.middleware import BodyLimit, ConfiguredCORS, SecurityHeaders
from api.problems import install_problem_handlers
from api.prometheus import DeploymentCollector, RequestMetrics, request_histogram
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
from api.routes.plain_poll import PlainPollRoute, PlainPolls
from shared.auth.keys import KeyStore
from shared.jobs.feed import JobFeed, connect_async
from shared.jobs.poll import PollRead
from shared.jobs.store import JobStore
from shared.logs import configure_logging
from shared.ops.registry import WorkerRegistry
from shared.queue import create_celery_app
from shared.settings import get_settings

log = logging.getLogger(__name__)

DESCRIPTION = """Train regularized Keras models on request.

Submit a job spec (or one of the article's presets with overrides), follow its per-epoch
records, cancel it, and download the trained model. Errors are `application/problem+json`.
"""


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Connect to Redis and the broker with the settings of this process."""
    settings = get_settings()
    configure_logging(settings.log_format, settings.log_level)
    store = JobStore.from_settings(settings)
    app.state.settings = settings
    app.state.store = store
    app.state.registry = WorkerRegistry(store.redis, store.keys)
    app.state.api_keys = KeyStore(store.redis, store.keys)
    app.state.celery = create_celery_app(settings)
    app.state.feed = JobFeed(connect_async(settings), store.keys)
    app.state.poll_read = PollRead(app.state.feed.redis, app.state.api_keys)
    deployment = DeploymentCollector(store, app.state.registry)
    app.state.prometheus.register(deployment)
    if not settings.auth_enabled:
        log.warning("AUTH_ENABLED is false: the API accepts requests without a key; use it only locally")
    # What exists now (modules, the app, its routes and models) lives as long as the process.
    # Frozen, it is no longer walked by every full garbage collection: a pause of tens of
    # milliseconds otherwise, which every request in flight waits out (the p99 under load).
    gc.freeze()
    yield
    app.state.prometheus.unregister(deployment)
    store.redis.close()
    await app.state.feed.redis.aclose()


class Api(FastAPI):
    """FastAPI, with a plain metrics poll answered before any of FastAPI's layers: for a client
    following a job, those layers cost more CPU than the poll's own work (``api.routes.plain_poll``)."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.plain_polls = PlainPolls()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not await self.plain_polls.answered(self, scope, send):
            await super().__call__(scope, receive, send)


def create_app() -> Api:
    """A new app; settings are read when it starts, not when it is made."""
    app = Api(title="keras-jobs", version="0.1.0", description=DESCRIPTION, lifespan=lifespan)
    install_problem_handlers(app)
    # Ahead of the documented metrics route: it answers the polls the front hands on.
    app.router.routes.append(PlainPollRoute())
    for module in (jobs, metrics, models, presets, studies, datasets, webhooks, workers):
        app.include_router(module.router, dependencies=[Depends(get_tenant)])
    app.include_router(health.router)
    app.include_router(ui.router)
    app.mount(ui.STATIC_PATH, ui.static_files(), name="ui-static")
    app.include_router(prometheus.router)
    app.state.prometheus = CollectorRegistry()
    app.state.request_seconds = request_histogram(app.state.prometheus)
    # Outermost last: every request is timed, CORS answers preflights, then headers are added,
    # then bodies are limited.
    for middleware in (BodyLimit, SecurityHeaders, ConfiguredCORS, RequestMetrics):
        app.add_middleware(middleware)
    return app


app = create_app()
