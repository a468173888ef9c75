"""Connections to Redis: every client of the service, sync or asyncio, with the same options."""

from typing import Any

from redis import Redis
from redis.asyncio import BlockingConnectionPool
from redis.asyncio import Redis as AsyncRedis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError

from shared.settings import Settings

MAX_CONNECTIONS = 1000
"""Redis connections one API process may open for its requests: far below Redis's default limit
of 10,000."""
STREAM_CONNECTIONS = 100
"""Redis connections one API process may open for its event streams and long polls (their reads
and their one pub/sub connection), a pool apart: streams cannot take what other requests need."""


def client_options(settings: Settings) -> dict[str, Any]:
    """What every Redis client of the service is made with, sync or asyncio: the service's
    timeouts, so a dead Redis fails fast instead of hanging."""
    return {
        "decode_responses": True,
        "socket_connect_timeout": settings.redis_connect_timeout_seconds,
        "socket_timeout": settings.redis_socket_timeout_seconds,
        "health_check_interval": 30,
    }


def connect(settings: Settings) -> Redis:
    """A Redis client on ``REDIS_URL`` with the service's options."""
    return Redis.from_url(settings.redis_url, **client_options(settings))


def connect_async(settings: Settings, max_connections: int = MAX_CONNECTIONS) -> AsyncRedis:
    """An asyncio Redis client with the service's options, on a pool of ``max_connections``."""
    # redis-py's default pool refuses a request outright ("Too many connections") once 100 are
    # in use, which 256 concurrent polls reach; this one lets a request wait, up to the command
    # timeout, for a connection to come free.
    pool = BlockingConnectionPool.from_url(
        settings.redis_url,
        max_connections=max_connections,
        timeout=settings.redis_socket_timeout_seconds,
        **client_options(settings),
        # A pooled connection that Redis dropped (a restart) is retried once on a new one.
        retry=Retry(NoBackoff(), 1),
        retry_on_error=[RedisConnectionError],
    )
    return AsyncRedis.from_pool(pool)
