"""Every pub/sub subscription of a process over one Redis connection.

An event stream or a long poll waits for its job's next change on the job's channel. With a
pub/sub connection each, a thousand open streams held a thousand connections of the API's pool
and starved every other request. Here one connection carries every channel the process's
waiters listen on: a channel is subscribed when its first waiter comes and unsubscribed when its
last one leaves, and one reader task wakes the waiters of each message's channel.

Should the connection drop, the reader reconnects (redis-py subscribes its channels again on the
new connection) and wakes every waiter, since a change may have been published meanwhile: a
waiter always reads what it waits for again after it wakes.
"""

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from redis.asyncio import Redis as AsyncRedis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

log = logging.getLogger(__name__)

Wait = Callable[[float], Awaitable[bool]]
"""``wait(seconds)``: True when the channel had a message (or may have had one) within that time."""

READ_SECONDS = 1.0
"""How long the reader blocks on the connection before it looks again (and sees it was stopped)."""
RECONNECT_SECONDS = 0.5


class ChannelHub:
    """One process's pub/sub connection, shared by every waiter of every channel."""

    def __init__(self, redis: AsyncRedis, confirm_seconds: float) -> None:
        self.redis, self.confirm_seconds = redis, confirm_seconds
        self._waiters: dict[str, set[asyncio.Event]] = {}
        self._confirmations: dict[str, asyncio.Future[None]] = {}
        self._pubsub: Any = None
        self._reader: asyncio.Task[None] | None = None
        self._lock: asyncio.Lock | None = None

    @property
    def channels(self) -> int:
        """How many channels are subscribed now."""
        return len(self._waiters)

    @asynccontextmanager
    async def listen(self, channel: str) -> AsyncIterator[Wait]:
        """Wait on ``channel`` within the block: subscribed (its subscription confirmed by Redis)
        before the block starts, so that what the caller reads next cannot miss a message."""
        woken = asyncio.Event()
        await self._join(channel, woken)
        try:
            yield lambda seconds: _woken_within(woken, seconds)
        finally:
            await self._leave(channel, woken)

    async def close(self) -> None:
        """Stop the reader and close the connection."""
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        if self._pubsub is not None:
            await self._pubsub.aclose()

    async def _join(self, channel: str, woken: asyncio.Event) -> None:
        async with self._locked():
            waiters = self._waiters.setdefault(channel, set())
            waiters.add(woken)
            if len(waiters) > 1:
                return
            confirmed = asyncio.get_running_loop().create_future()
            self._confirmations[channel] = confirmed
            try:
                await self._connection().subscribe(channel)
                self._start_reader()
                try:
                    await asyncio.wait_for(asyncio.shield(confirmed), self.confirm_seconds)
                except TimeoutError:
                    raise RedisTimeoutError(f"no confirmation of the subscription to {channel}") from None
            except BaseException:
                self._confirmations.pop(channel, None)
                self._forget(channel, woken)
                raise

    async def _leave(self, channel: str, woken: asyncio.Event) -> None:
        if self._forget(channel, woken):
            # Shielded: a stream leaves when its task is cancelled (its client went away), and
            # its channel must be unsubscribed all the same.
            await asyncio.shield(self._unsubscribe(channel))

    async def _unsubscribe(self, channel: str) -> None:
        async with self._locked():
            if channel in self._waiters:  # a new waiter came meanwhile, and subscribed it again
                return
            with contextlib.suppress(RedisConnectionError, RedisTimeoutError, OSError):
                # A connection that is down has dropped the subscription already.
                await self._connection().unsubscribe(channel)

    def _forget(self, channel: str, woken: asyncio.Event) -> bool:
        """Drop one waiter; True when it was the channel's last."""
        waiters = self._waiters.get(channel, set())
        waiters.discard(woken)
        if waiters:
            return False
        self._waiters.pop(channel, None)
        return True

    def _locked(self) -> asyncio.Lock:
        # Made in the running loop, on first use: the hub is made before the server's loop runs.
        if self._lock is None:
            self._lock = asyncio.Lock()
        return self._lock

    def _connection(self) -> Any:
        if self._pubsub is None:
            self._pubsub = self.redis.pubsub()
        return self._pubsub

    def _start_reader(self) -> None:
        if self._reader is None or self._reader.done():
            self._reader = asyncio.get_running_loop().create_task(self._read(), name="pubsub-reader")

    async def _read(self) -> None:
        # Runs until ``close``, subscriptions or none: a reader that ended with the last one
        # could not be told apart from one still ending when the next subscription comes.
        while True:
            try:
                message = await self._pubsub.get_message(timeout=READ_SECONDS)
            except Exception as exc:  # the connection lost, mostly; the streams must not hang on it
                log.warning("pub/sub connection: %s: %s; reconnecting", type(exc).__name__, exc)
                await asyncio.sleep(RECONNECT_SECONDS)
                self._wake_all()
                continue
            if message is not None:
                self._deliver(message)

    def _deliver(self, message: dict[str, Any]) -> None:
        channel = str(message["channel"])
        if message["type"] == "subscribe":
            confirmed = self._confirmations.pop(channel, None)
            if confirmed is not None and not confirmed.done():
                confirmed.set_result(None)
        elif message["type"] == "message":
            for woken in self._waiters.get(channel, ()):
                woken.set()

    def _wake_all(self) -> None:
        for waiters in self._waiters.values():
            for woken in waiters:
                woken.set()


async def _woken_within(woken: asyncio.Event, seconds: float) -> bool:
    try:
        await asyncio.wait_for(woken.wait(), seconds)
    except TimeoutError:
        return False
    woken.clear()
    return True
