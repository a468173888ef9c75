"""When a call is tried again, and how long to wait first.

A request that never left (the connection was refused) and a 429 (refused before any work)
are retried whatever the call. A dropped connection, a 502, 503 or 504 may come after the
service acted, so only calls that are safe to repeat retry them: reads, and submissions that
carry an ``Idempotency-Key``, whose retry returns the job the first attempt created.
"""

import random
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import httpx

from client.errors import ServiceUnreachable

NOT_SENT_ERRORS = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
GATEWAY_STATUSES = frozenset({502, 503, 504})
TOO_MANY_REQUESTS = 429


@dataclass(frozen=True)
class RetryPolicy:
    """How many tries a call gets in all, and the backoff between them."""

    attempts: int = 5
    backoff_seconds: float = 0.5
    max_backoff_seconds: float = 10.0
    max_retry_after_seconds: float = 60.0

    def delay(self, retry: int, response: httpx.Response | None = None) -> float:
        """Seconds to wait before retry number ``retry`` (1-based): the answer's ``Retry-After``
        when it gives one, else exponential backoff with jitter."""
        hinted = retry_after_seconds(response) if response is not None else None
        if hinted is not None:
            return min(hinted, self.max_retry_after_seconds)
        ceiling = min(self.max_backoff_seconds, self.backoff_seconds * 2 ** (retry - 1))
        return float(ceiling * random.uniform(0.5, 1.0))  # jitter spreads out clients that failed together


NO_RETRIES = RetryPolicy(attempts=1)


def retryable_error(error: httpx.TransportError, repeat_safe: bool) -> bool:
    """Whether a call that failed with ``error`` may be sent again."""
    return repeat_safe or isinstance(error, NOT_SENT_ERRORS)


def retryable_status(status: int, repeat_safe: bool) -> bool:
    """Whether a call answered with ``status`` may be sent again."""
    return status == TOO_MANY_REQUESTS or (repeat_safe and status in GATEWAY_STATUSES)


def retry_after_seconds(response: httpx.Response) -> float | None:
    """The answer's ``Retry-After`` in seconds (given as seconds or as an HTTP date), if any."""
    value = response.headers.get("Retry-After")
    if not value:
        return None
    if value.strip().isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


class Tries:
    """The tries of one call: counts them, and says whether and when to try again."""

    def __init__(self, policy: RetryPolicy, repeat_safe: bool) -> None:
        self.policy = policy
        self.repeat_safe = repeat_safe
        self.count = 1

    def wait_after_error(self, error: httpx.TransportError, url: str) -> float:
        """Seconds to wait before the next try; ``ServiceUnreachable`` when none is left."""
        if self.count >= self.policy.attempts or not retryable_error(error, self.repeat_safe):
            raise unreachable(error, url) from error
        return self._next(None)

    def wait_after_status(self, response: httpx.Response) -> float | None:
        """Seconds to wait before the next try, or None when this error answer is final."""
        if self.count >= self.policy.attempts or not retryable_status(response.status_code, self.repeat_safe):
            return None
        return self._next(response)

    def reset(self) -> None:
        """Start counting again: the last try made progress (a stream delivered an event)."""
        self.count = 1

    def _next(self, response: httpx.Response | None) -> float:
        delay = self.policy.delay(self.count, response)
        self.count += 1
        return delay


def unreachable(error: httpx.TransportError, url: str) -> ServiceUnreachable:
    """The error a caller sees for ``error``, naming the service."""
    return ServiceUnreachable(f"no answer from {url} ({str(error) or type(error).__name__})")
