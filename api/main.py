"""The FastAPI app: ``uvicorn api.main:app``."""

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI

from api.dependencies import get_tenant
from api.middleware import BodyLimit, ConfiguredCORS, SecurityHeaders
from api.problems import install_problem_handlers
from api.routes import datasets, health, jobs, metrics, models, presets, studies
from shared.apikeys import KeyStore
from shared.feed import JobFeed, connect_async
from shared.queue import create_celery_app
from shared.registry import WorkerRegistry
from shared.settings import get_settings
from shared.store import JobStore

log = logging.getLogger(__name__)

DESCRIPTION = """Train regularized Keras models on request.

Submit a job spec (or one of the article's presets with overrides), follow its per-epoch
records, cancel it, and download the trained model. Errors are `application/problem+json`.
"""


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Connect to Redis and the broker with the settings of this process."""
    settings = get_settings()
    store = JobStore.from_settings(settings)
    app.state.settings = settings
    app.state.store = store
    app.state.registry = WorkerRegistry(store.redis, store.keys)
    app.state.api_keys = KeyStore(store.redis, store.keys)
    app.state.celery = create_celery_app(settings)
    app.state.feed = JobFeed(connect_async(settings), store.keys)
    if not settings.auth_enabled:
        log.warning("AUTH_ENABLED is false: the API accepts requests without a key; use it only locally")
    yield
    store.redis.close()
    await app.state.feed.redis.aclose()


def create_app() -> FastAPI:
    """A new app; settings are read when it starts, not when it is made."""
    app = FastAPI(title="keras-jobs", version="0.1.0", description=DESCRIPTION, lifespan=lifespan)
    install_problem_handlers(app)
    for module in (jobs, metrics, models, presets, studies, datasets):
        app.include_router(module.router, dependencies=[Depends(get_tenant)])
    app.include_router(health.router)
    # Outermost last: CORS answers preflights, then headers are added, then bodies are limited.
    for middleware in (BodyLimit, SecurityHeaders, ConfiguredCORS):
        app.add_middleware(middleware)
    return app


app = create_app()
