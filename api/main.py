"""The FastAPI app: ``uvicorn api.main:app``."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from api.problems import install_problem_handlers
from api.routes import health, jobs, metrics, models, presets
from shared.queue import create_celery_app
from shared.registry import WorkerRegistry
from shared.settings import get_settings
from shared.store import JobStore

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
    app.state.celery = create_celery_app(settings)
    yield
    store.redis.close()


def create_app() -> FastAPI:
    """A new app; settings are read when it starts, not when it is made."""
    app = FastAPI(title="keras-jobs", version="0.1.0", description=DESCRIPTION, lifespan=lifespan)
    install_problem_handlers(app)
    for module in (jobs, metrics, models, presets, health):
        app.include_router(module.router)
    return app


app = create_app()
