"""How many event streams and long polls each API key holds open, across every API process.

A stream holds little of the API's own (its wait shares one pub/sub connection), but each is an
open connection and a share of the process's reads: a cap per key keeps one client's thousand
streams from crowding out every other tenant. Each stream holds a slot in Redis that expires
unless renewed, so a stream whose API process died gives its slot back by itself.
"""

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from redis.asyncio import Redis as AsyncRedis

from shared.errors import TooManyRequests
from shared.redis.keys import RedisKeys
from shared.redis.scripts import HOLD_STREAM, Word

SLOT_SECONDS = 60.0
"""How long a slot is held without a renewal: a stream renews it more often than this."""


@dataclass
class StreamSlot:
    """One open stream's slot: ``renew`` it at least once a ``SLOT_SECONDS``, ``release`` it at
    the end."""

    slots: "StreamSlots"
    key_id: str
    id: str

    async def renew(self) -> None:
        """Hold the slot for another ``SLOT_SECONDS``."""
        await self.slots.hold(self.key_id, self.id, renewal=True)

    async def release(self) -> None:
        """Give the slot back. Shielded: a stream ends when its task is cancelled (its client
        went away), and its slot must be given back all the same."""
        await asyncio.shield(self.slots.redis.zrem(self.slots.keys.open_streams(self.key_id), self.id))


class StreamSlots:
    """The open streams of each API key, counted in Redis."""

    def __init__(self, redis: AsyncRedis, keys: RedisKeys, per_key: int) -> None:
        self.redis, self.keys, self.per_key = redis, keys, per_key

    async def take(self, key_id: str) -> StreamSlot:
        """A slot of ``key_id``'s; ``TooManyRequests`` when it holds its most."""
        slot = StreamSlot(self, key_id, uuid.uuid4().hex)
        if not await self.hold(key_id, slot.id, renewal=False):
            message = f"this API key holds {self.per_key} event streams and long polls open, its most"
            raise TooManyRequests(message, retry_after=int(SLOT_SECONDS))
        return slot

    @asynccontextmanager
    async def slot(self, key_id: str) -> AsyncIterator[StreamSlot]:
        """A slot of ``key_id``'s for the block (``take``, then ``release``)."""
        slot = await self.take(key_id)
        try:
            yield slot
        finally:
            await slot.release()

    async def hold(self, key_id: str, slot_id: str, renewal: bool) -> bool:
        """Take or renew one slot; False when the key holds its most already."""
        words: list[Word] = [slot_id, self.per_key, int(SLOT_SECONDS * 1000), 1 if renewal else 0]
        return bool(await HOLD_STREAM.run_async(self.redis, [self.keys.open_streams(key_id)], words))
