"""Connections to Redis: every client of the service, sync or asyncio, with the same options.

``REDIS_URL`` names one Redis (``redis://``, ``rediss://`` for TLS, ``unix://``), or the Redis
Sentinels that watch a primary and its replicas, in the form Celery's Redis transport takes:
``sentinel://[:password@]host:port[/db]`` for each sentinel, joined by ``;``, with the primary's
name in ``REDIS_SENTINEL_MASTER``. Through Sentinel every client asks the sentinels where the
primary is whenever it connects, so after a failover the service reconnects to the new primary
without a restart.
"""

from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

from redis import Redis
from redis.asyncio import BlockingConnectionPool
from redis.asyncio import Redis as AsyncRedis
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel as AsyncSentinel
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.sentinel import Sentinel

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


@dataclass(frozen=True)
class Sentinels:
    """What a ``sentinel://`` URL names: the sentinels, and the primary's password and database."""

    addresses: list[tuple[str, int]]
    password: str | None
    username: str | None
    db: int


def sentinels_of(url: str) -> Sentinels | None:
    """The sentinels of a ``sentinel://`` URL (Celery's form); None for any other URL."""
    if not url.startswith("sentinel://"):
        return None
    parts = [urlsplit(part) for part in url.split(";") if part]
    first = parts[0]
    return Sentinels(
        addresses=[(part.hostname or "localhost", part.port or 26379) for part in parts],
        password=unquote(first.password) if first.password else None,
        username=unquote(first.username) if first.username else None,
        db=int(first.path.strip("/") or 0),
    )


def primary_options(sentinels: Sentinels) -> dict[str, Any]:
    """The options of a connection to the primary that ``sentinels`` name."""
    return {"password": sentinels.password, "username": sentinels.username, "db": sentinels.db}


def sentinel_options(settings: Settings) -> dict[str, Any]:
    """The options of the connections to the sentinels themselves."""
    options: dict[str, Any] = {
        "socket_connect_timeout": settings.redis_connect_timeout_seconds,
        "socket_timeout": settings.redis_socket_timeout_seconds,
    }
    if settings.redis_sentinel_password is not None:
        options["password"] = settings.redis_sentinel_password.get_secret_value()
    return options


def connect(settings: Settings) -> Redis:
    """A Redis client on ``REDIS_URL`` with the service's options."""
    sentinels = sentinels_of(settings.redis_url)
    if sentinels is None:
        return Redis.from_url(settings.redis_url, **client_options(settings))
    manager = Sentinel(
        sentinels.addresses, sentinel_kwargs=sentinel_options(settings), **client_options(settings)
    )
    client: Redis = manager.master_for(
        settings.redis_sentinel_master, redis_class=Redis, **primary_options(sentinels)
    )
    return client


def connect_async(settings: Settings, max_connections: int = MAX_CONNECTIONS) -> AsyncRedis:
    """An asyncio Redis client with the service's options, on a pool of ``max_connections``."""
    sentinels = sentinels_of(settings.redis_url)
    if sentinels is not None:
        manager = AsyncSentinel(
            sentinels.addresses, sentinel_kwargs=sentinel_options(settings), **client_options(settings)
        )
        options = primary_options(sentinels) | {"max_connections": max_connections}
        primary: AsyncRedis = manager.master_for(
            settings.redis_sentinel_master, redis_class=AsyncRedis, **options
        )
        return primary
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
