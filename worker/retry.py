"""Riding out a Redis outage: retry with backoff rather than fail a job that is training well."""

import logging
import time
from collections.abc import Callable
from typing import TypeVar

from redis.exceptions import BusyLoadingError, ReadOnlyError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

log = logging.getLogger(__name__)

T = TypeVar("T")
TRANSIENT = (RedisConnectionError, RedisTimeoutError, BusyLoadingError, ReadOnlyError)
"""Errors of a Redis that is down, restarting, loading its data or failing over."""


def with_retries(call: Callable[[], T], what: str, budget_seconds: float) -> T:
    """``call()``, retried with exponential backoff (0.5 s to 10 s) while Redis is unavailable.

    Gives up, re-raising the last error, once ``budget_seconds`` have passed.
    """
    delay, deadline = 0.5, time.monotonic() + budget_seconds
    while True:
        try:
            return call()
        except TRANSIENT as exc:
            if time.monotonic() + delay > deadline:
                raise
            log.warning(
                "%s: Redis unavailable (%s: %s); retrying in %.1f s", what, type(exc).__name__, exc, delay
            )
            time.sleep(delay)
            delay = min(delay * 2, 10.0)
