"""A reading kept for a while: what ``/readyz`` reports (the Redis contract, the artifact store's
probe) without reading it again on every probe."""

import time
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class Refreshed(Generic[T]):
    """``read()``'s last answer while it is younger than ``seconds``, else a new one (an error
    of ``read`` propagates, and the next call reads again)."""

    def __init__(
        self, read: Callable[[], T], seconds: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.read, self.seconds, self._clock = read, seconds, clock
        self._last: tuple[float, T] | None = None

    def current(self) -> T:
        """The reading, fresh enough."""
        last, now = self._last, self._clock()
        if last is not None and now - last[0] < self.seconds:
            return last[1]
        value = self.read()
        # One assignment, so concurrent probes (a thread pool's) see an old reading or a new one.
        self._last = (now, value)
        return value
