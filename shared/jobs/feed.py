"""The API's reads on its asyncio Redis client: a caller's key, a page of a job's epoch records,
or both in one round trip (``shared.redis.scripts.KEY_AND_PAGE``), and the job's pub/sub channel
(``shared.redis.channels``), which wakes a waiting reader when the job records an epoch or
changes status."""

import json
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass

from redis.asyncio import Redis as AsyncRedis

from shared.auth.keys import Caller, FailureLimit, KeyLookup, KeyStore, parse_token
from shared.errors import JobNotFound
from shared.models.jobs import JobStatus
from shared.redis.channels import ChannelHub, Wait
from shared.redis.keys import RedisKeys
from shared.redis.scripts import KEY_AND_PAGE, Word

CONFIRM_SECONDS = 2.0
"""How long a new subscription may wait for Redis's confirmation."""

# The records below are slotted, not frozen: one of each is made on every poll, and a frozen
# dataclass's __init__ is several times slower.


@dataclass(slots=True)
class FeedPage:
    """A job's tenant and status, its stored JSON records after a cursor, and its epoch count."""

    tenant: str
    status: JobStatus
    records: list[str]
    total: int


@dataclass(slots=True)
class PageQuery:
    """Which records a page holds: at most ``limit`` after epoch ``after_epoch``."""

    job_id: str
    after_epoch: int
    limit: int


@dataclass(slots=True)
class FeedRead:
    """What one read found, as asked: the key's ``CHECKED_FIELDS`` (None for each of an unknown
    key) and this window's request count, and the page (None for no such job)."""

    key_fields: list[str | None] | None
    requests_in_window: int
    page: FeedPage | None

    def page_of(self, job_id: str) -> FeedPage:
        """The page that was read; ``JobNotFound`` when the job does not exist."""
        if self.page is None:
            raise JobNotFound(job_id)
        return self.page


class AddressThrottled(Exception):
    """A client address past its limit of requests whose key did not check out."""


class JobFeed:
    """The API's asyncio reads, one round trip each, and waits for a job's next change (on
    ``hub``, the process's one pub/sub connection, which feeds on other pools may share)."""

    def __init__(self, redis: AsyncRedis, keys: RedisKeys, hub: ChannelHub | None = None) -> None:
        self.redis, self.keys = redis, keys
        self.hub = hub or ChannelHub(redis, confirm_seconds=CONFIRM_SECONDS)

    async def read(self, key: KeyLookup | None, page: PageQuery | None) -> FeedRead:
        """Look up a key (counting this request in its rate window, or as a failure of its client
        address) and read a page, as asked.

        A page parses nothing but two short fields, so a read that finds nothing new stays cheap.
        """
        names: list[str] = []
        words: list[Word] = [0, 0, 0]
        if key is not None:
            names += [key.record, key.counter, key.failures]
            words = [key.counter_seconds, 0, 0, key.digest, key.failure_limit, key.failure_seconds]
        if page is not None:
            names += [self.keys.job(page.job_id), self.keys.epochs(page.job_id)]
            words[1:3] = [page.after_epoch, page.after_epoch + page.limit - 1]
        fields, count, job, records, total = await KEY_AND_PAGE.run_async(self.redis, names, words)
        return FeedRead(fields or None, count or 0, None if page is None else _page(job, records, total))

    async def read_as(
        self,
        api_keys: KeyStore,
        token: str,
        window_seconds: int,
        client: str,
        failures: FailureLimit,
        page: PageQuery | None = None,
    ) -> tuple[Caller | None, FeedRead | None]:
        """Who presents ``token`` (None unless it is a valid key), with the request counted in
        its rate window, and ``page``, in one round trip; a token not shaped like one of our keys
        reads nothing. ``AddressThrottled`` when the client's address is past its failures."""
        parts = parse_token(token)
        if parts is None:
            return None, None
        lookup = api_keys.lookup(parts, window_seconds, client, failures)
        found = await self.read(lookup, page)
        if found.requests_in_window < 0:
            raise AddressThrottled(client)
        fields = found.key_fields or (None, None, None)
        return KeyStore.caller(lookup, parts[0], fields, found.requests_in_window), found

    async def page(self, job_id: str, after_epoch: int, limit: int) -> FeedPage:
        """The records after ``after_epoch`` (at most ``limit``) with the job's status;
        ``JobNotFound`` when there is no such job."""
        return (await self.read(None, PageQuery(job_id, after_epoch, limit))).page_of(job_id)

    def changes(self, job_id: str) -> AbstractAsyncContextManager[Wait]:
        """Listen to the job's changes; yields ``wait(seconds)``, True when one came (or may have).

        Subscribe first, then read: a change between the read and the wait is not missed.
        """
        return self.hub.listen(self.keys.job_events(job_id))


def _page(job: list[str | None], records: list[str], total: int) -> FeedPage | None:
    tenant, status = job
    if tenant is None or status is None:
        return None
    # The client decodes replies, so the records are str already.
    return FeedPage(json.loads(tenant), JobStatus(json.loads(status)), records, total)
