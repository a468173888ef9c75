"""What the routes work with, made once when the app starts: the settings, the stores on Redis,
the asyncio reader of job records and the Celery app that sends tasks by name."""

from dataclasses import dataclass

from celery import Celery
from prometheus_client import CollectorRegistry
from starlette.types import Scope

from api.prometheus import DeploymentCollector, RequestSeconds
from shared.auth.keys import KeyStore
from shared.datasets.store import DatasetQuota, DatasetStore
from shared.jobs.dispatch import Dispatch
from shared.jobs.feed import JobFeed
from shared.jobs.store import JobStore
from shared.ops.registry import WorkerRegistry
from shared.queue import create_celery_app
from shared.redis.connection import connect_async
from shared.settings import Settings
from shared.studies.store import StudyStore
from shared.webhooks.claims import DeliveryClaims
from shared.webhooks.secrets import WebhookSecrets


@dataclass(frozen=True)
class Services:
    """The app's services; routes reach them through ``api.dependencies``."""

    settings: Settings
    store: JobStore
    feed: JobFeed
    api_keys: KeyStore
    dispatch: Dispatch
    studies: StudyStore
    datasets: DatasetStore
    workers: WorkerRegistry
    deliveries: DeliveryClaims
    webhook_secrets: WebhookSecrets
    prometheus: CollectorRegistry
    request_seconds: RequestSeconds

    @classmethod
    def start(cls, settings: Settings) -> "Services":
        """Services on the Redis and broker that ``settings`` name (connections open lazily)."""
        store = JobStore.from_settings(settings)
        redis, keys = store.redis, store.keys
        dispatch = Dispatch(store, create_celery_app(settings))
        workers, prometheus = WorkerRegistry(redis, keys), CollectorRegistry()
        prometheus.register(DeploymentCollector(store, workers))
        return cls(
            settings=settings,
            store=store,
            feed=JobFeed(connect_async(settings), keys),
            api_keys=KeyStore(redis, keys),
            dispatch=dispatch,
            studies=StudyStore(dispatch),
            datasets=DatasetStore(
                store,
                settings.artifacts_dir,
                DatasetQuota(settings.max_datasets_per_tenant, settings.max_dataset_bytes_per_tenant),
            ),
            workers=workers,
            deliveries=DeliveryClaims(redis, keys),
            webhook_secrets=WebhookSecrets(redis, keys),
            prometheus=prometheus,
            request_seconds=RequestSeconds(prometheus),
        )

    @property
    def celery(self) -> Celery:
        """The Celery app that sends tasks by name."""
        return self.dispatch.celery

    async def close(self) -> None:
        """Close the Redis connections."""
        self.store.redis.close()
        await self.feed.redis.aclose()


SERVICES = "services"
"""The name of the services in the app's lifespan state, which every request's scope carries."""


def services_of(scope: Scope) -> Services:
    """The services of the app serving a request (from its scope, as middleware sees it)."""
    services: Services = scope["state"][SERVICES]
    return services
