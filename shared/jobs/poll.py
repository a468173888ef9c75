"""A plain metrics poll's reads as one Redis command: a script that reads the key's record,
counts the request in its rate window and reads the job's page.

The same six commands as ``KeyStore.queue_lookup`` and ``JobFeed.queue_page`` on a pipeline,
with the same replies, which the same ``KeyStore.caller`` and ``JobFeed.read_page`` read. On
the client, one command costs about half of what six pipelined ones do (each of those is
packed, read under its own timeout and parsed on its own), and a poll is mostly that cost.
"""

from typing import Any

from redis.asyncio import Redis as AsyncRedis

from shared.auth.keys import KeyStore

# KEYS: the key's record, its rate counter, the job, the job's epoch list.
# ARGV: the counter's lifetime, the first and last index of the page.
# HGETALL answers a flat list inside a script; the client makes it a mapping again.
_SCRIPT = """
local record = redis.call('HGETALL', KEYS[1])
local count = redis.call('INCR', KEYS[2])
local expired = redis.call('EXPIRE', KEYS[2], ARGV[1])
local job = redis.call('HMGET', KEYS[3], 'tenant', 'status')
local records = redis.call('LRANGE', KEYS[4], ARGV[2], ARGV[3])
return {record, count, expired, job, records, redis.call('LLEN', KEYS[4])}
"""


class PollRead:
    """Runs the script (by its digest, loading it again when Redis has forgotten it)."""

    def __init__(self, redis: AsyncRedis, api_keys: KeyStore) -> None:
        self.script = redis.register_script(_SCRIPT)
        self.api_keys = api_keys

    async def __call__(
        self, key_id: str, window_seconds: int, job_id: str, after_epoch: int, limit: int
    ) -> list[Any]:
        """The replies of ``queue_lookup`` then ``queue_page``, in their order and shapes."""
        counter, expiry = self.api_keys.rate_counter(key_id, window_seconds)
        keys = self.api_keys.keys
        names = [keys.api_key(key_id), counter, keys.job(job_id), keys.epochs(job_id)]
        args = [expiry, after_epoch, after_epoch + limit - 1]
        record, *rest = await self.script(keys=names, args=args)
        return [dict(zip(record[::2], record[1::2], strict=True)), *rest]
