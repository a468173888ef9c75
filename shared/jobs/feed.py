"""Following a job without polling Redis in a loop: its epoch records read by cursor, and a
pub/sub channel that wakes a waiting reader when the job records an epoch or changes status."""

import json
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from redis.asyncio import BlockingConnectionPool
from redis.asyncio import Redis as AsyncRedis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError

from shared.errors import JobNotFound
from shared.models.jobs import JobStatus
from shared.redis.codec import client_options
from shared.redis.keys import RedisKeys
from shared.settings import Settings

MAX_CONNECTIONS = 1000
"""Redis connections one API process may open: far below Redis's default limit of 10,000."""


@dataclass(frozen=True)
class FeedPage:
    """A job's tenant and status, its stored JSON records after a cursor, and its epoch count."""

    tenant: str
    status: JobStatus
    records: list[str]
    total: int


def connect_async(settings: Settings) -> AsyncRedis:
    """An asyncio Redis client with the service's timeouts."""
    # redis-py's default pool refuses a request outright ("Too many connections") once 100 are
    # in use, which 256 concurrent polls reach; this one lets a request wait, up to the command
    # timeout, for a connection to come free. Each open event stream or long poll holds one.
    pool = BlockingConnectionPool.from_url(
        settings.redis_url,
        max_connections=MAX_CONNECTIONS,
        timeout=settings.redis_socket_timeout_seconds,
        **client_options(settings),
        # A pooled connection that Redis dropped (a restart) is retried once on a new one.
        retry=Retry(NoBackoff(), 1),
        retry_on_error=[RedisConnectionError],
    )
    return AsyncRedis.from_pool(pool)


class JobFeed:
    """Cursor reads of a job's records and waits for its next change; one round trip a read."""

    def __init__(self, redis: AsyncRedis, keys: RedisKeys) -> None:
        self.redis, self.keys = redis, keys

    async def page(self, job_id: str, after_epoch: int, limit: int) -> FeedPage:
        """The records after ``after_epoch`` (at most ``limit``) with the job's status; parses
        nothing but two short fields, so a read that finds nothing new stays cheap."""
        pipe = self.redis.pipeline(transaction=False)
        self.queue_page(pipe, job_id, after_epoch, limit)
        return self.read_page(job_id, await pipe.execute())

    def queue_page(self, pipe: Any, job_id: str, after_epoch: int, limit: int) -> None:
        """Queue on a pipeline (of ``self.redis``) what ``page`` reads, for ``read_page``."""
        pipe.hmget(self.keys.job(job_id), ["tenant", "status"])
        pipe.lrange(self.keys.epochs(job_id), after_epoch, after_epoch + limit - 1)
        pipe.llen(self.keys.epochs(job_id))

    @staticmethod
    def read_page(job_id: str, replies: Sequence[Any]) -> FeedPage:
        """The page from the replies ``queue_page`` queued; ``JobNotFound`` for no such job."""
        (tenant, status), records, total = replies
        if tenant is None:
            raise JobNotFound(job_id)
        # The client decodes replies, so the records are str already.
        return FeedPage(json.loads(tenant), JobStatus(json.loads(status)), list(records), int(total))

    @asynccontextmanager
    async def changes(self, job_id: str) -> AsyncIterator[Callable[[float], Awaitable[bool]]]:
        """Subscribe to the job's changes; yields ``wait(seconds)``, True when one came.

        Subscribe first, then read: a change between the read and the wait is not missed.
        """
        pubsub = self.redis.pubsub()
        await pubsub.subscribe(self.keys.job_events(job_id))

        async def wait(seconds: float) -> bool:
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=seconds)
            return message is not None

        try:
            yield wait
        finally:
            await pubsub.unsubscribe()
            await pubsub.aclose()  # type: ignore[no-untyped-call]
