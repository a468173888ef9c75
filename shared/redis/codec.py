"""Redis plumbing shared by the storage modules: connections, ids and JSON-encoded fields."""

import json
from collections.abc import Mapping
from typing import Any, cast

from redis import Redis
from redis.client import Pipeline

from shared.settings import Settings


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


def encode(fields: Mapping[str, Any]) -> dict[str, str]:
    return {name: json.dumps(value) for name, value in fields.items()}


def hset_json(pipe: Pipeline, key: str, fields: Mapping[str, Any]) -> None:
    # redis-py's stubs want a Mapping keyed by a union that no plain dict[str, str] matches.
    pipe.hset(key, mapping=cast(Any, encode(fields)))


def strings(values: Any) -> list[str]:
    """A reply of a client made with ``decode_responses=True``: str items, typed as such."""
    return [str(value) for value in values]


def decode(raw: Mapping[str, str]) -> dict[str, Any]:
    return {name: json.loads(value) for name, value in raw.items()}
