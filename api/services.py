"""What the routes work with, made once when the app starts: the settings, the stores on Redis,
the asyncio reader of job records and the Celery app that sends tasks by name."""

from dataclasses import dataclass

from celery import Celery
from prometheus_client import CollectorRegistry
from starlette.types import Scope

from api.prometheus import DeploymentCollector, RequestSeconds
from shared.auth.keys import KeyStore
from shared.auth.streams import StreamSlots
from shared.datasets.store import DatasetQuota, DatasetStore
from shared.jobs.dispatch import Dispatch
from shared.jobs.feed import JobFeed
from shared.jobs.store import JobStore
from shared.models.artifacts import StoreStatus
from shared.models.redis_contract import RedisContract
from shared.ops.redis_contract import contract_watch
from shared.ops.refreshed import Refreshed
from shared.ops.registry import WorkerRegistry
from shared.queue import create_celery_app
from shared.redis.channels import ChannelHub
from shared.redis.connection import STREAM_CONNECTIONS, connect_async
from shared.scheduling.places import QueueReader
from shared.settings import Settings
from shared.storage import ArtifactStore, open_store
from shared.storage.probe import store_watch
from shared.studies.search import Search
from shared.studies.store import StudyStore
from shared.webhooks.claims import DeliveryClaims
from shared.webhooks.secrets import WebhookSecrets


@dataclass(frozen=True)
class Services:
    """The app's services; routes reach them through ``api.dependencies``."""

    settings: Settings
    store: JobStore
    feed: JobFeed
    stream_feed: JobFeed
    """The feed of event streams and long polls: their reads on a pool apart from every other
    request's, their waits on the process's one pub/sub connection."""
    stream_slots: StreamSlots
    api_keys: KeyStore
    dispatch: Dispatch
    studies: StudyStore
    search: Search
    """Searches: creation, and their trials as Optuna holds them."""
    datasets: DatasetStore
    artifacts: ArtifactStore
    artifacts_watch: Refreshed[StoreStatus]
    """The artifact store's probe (``/readyz`` reports it)."""
    workers: WorkerRegistry
    queue: QueueReader
    """Where queued jobs stand (``shared.scheduling``)."""
    redis_contract: Refreshed[RedisContract]
    """What Redis is, as the Redis contract asks (``/readyz`` reports it)."""
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
        queue = QueueReader(store, settings)
        prometheus.register(DeploymentCollector(store, workers, queue))
        artifacts = open_store(settings)
        studies = StudyStore(dispatch)
        quota = DatasetQuota(settings.max_datasets_per_tenant, settings.max_dataset_bytes_per_tenant)
        datasets = DatasetStore(store, artifacts, quota)
        streams = connect_async(settings, max_connections=STREAM_CONNECTIONS)
        hub = ChannelHub(streams, confirm_seconds=settings.redis_socket_timeout_seconds)
        feed = JobFeed(connect_async(settings), keys, hub)
        return cls(
            settings=settings,
            store=store,
            feed=feed,
            stream_feed=JobFeed(streams, keys, hub),
            stream_slots=StreamSlots(feed.redis, keys, settings.max_streams_per_key),
            api_keys=KeyStore(redis, keys),
            dispatch=dispatch,
            studies=studies,
            search=Search(studies, datasets, settings),
            datasets=datasets,
            artifacts=artifacts,
            artifacts_watch=store_watch(artifacts),
            workers=workers,
            queue=queue,
            redis_contract=contract_watch(redis),
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
        await self.stream_feed.hub.close()
        await self.feed.redis.aclose()
        await self.stream_feed.redis.aclose()


SERVICES = "services"
"""The name of the services in the app's lifespan state, which every request's scope carries."""


def services_of(scope: Scope) -> Services:
    """The services of the app serving a request (from its scope, as middleware sees it)."""
    services: Services = scope["state"][SERVICES]
    return services
