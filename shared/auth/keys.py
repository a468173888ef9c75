"""API keys: each belongs to a tenant; only a hash of its secret is stored.

A key reads ``kj_<id>_<secret>``: the id finds its record, and the secret's SHA-256 is
compared in constant time. Secrets are 256 random bits, so a fast hash is enough.
"""

import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from pydantic import BaseModel
from redis import Redis

from shared.models.jobs import utc_now
from shared.redis.codec import strings
from shared.redis.keys import RedisKeys

TENANT_PATTERN = r"^[A-Za-z0-9_.-]{1,64}$"
_TOKEN = re.compile(r"^kj_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$")


class ApiKeyInfo(BaseModel):
    id: str
    tenant: str
    name: str = ""
    created_at: datetime
    revoked_at: datetime | None = None


@dataclass(frozen=True)
class FailureLimit:
    """How many requests whose key does not check out one client address may make in
    ``seconds`` before its requests are refused without a look at their key."""

    limit: int
    seconds: int


CHECKED_FIELDS = ("tenant", "hash", "revoked_at")
"""The fields of a key's record that a request's key check reads."""


# Slotted, not frozen: one of each is made on every request, and a frozen dataclass's __init__
# is several times slower.
@dataclass(slots=True)
class Caller:
    """Who a request comes from, and how many requests its key made in this window (built from
    Redis's own replies, on every request: nothing to validate)."""

    tenant: str
    key_id: str
    requests_in_window: int


@dataclass(slots=True)
class KeyLookup:
    """The Redis keys of one key check: the key's record, its rate counter, which lives
    ``counter_seconds`` (two windows), and the failure counter of the client's address; the
    presented secret's digest; and how many failures an address may have in how long."""

    record: str
    counter: str
    counter_seconds: int
    failures: str
    digest: str
    failure_limit: int
    failure_seconds: int


def parse_token(token: str) -> tuple[str, str] | None:
    """A presented key's id and secret; None when it is not shaped like one of our keys."""
    match = _TOKEN.match(token)
    return None if match is None else (match[1], match[2])


def _info(key_id: str, record: dict[str, str]) -> ApiKeyInfo:
    return ApiKeyInfo(
        id=key_id,
        tenant=record["tenant"],
        name=record.get("name", ""),
        created_at=datetime.fromisoformat(record["created_at"]),
        revoked_at=datetime.fromisoformat(record["revoked_at"]) if record.get("revoked_at") else None,
    )


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


_NO_HASH = "0" * 64


class KeyStore:
    """Creates, checks, lists and revokes API keys."""

    def __init__(self, redis: Redis, keys: RedisKeys) -> None:
        self.redis, self.keys = redis, keys

    def create(self, tenant: str, name: str = "") -> tuple[ApiKeyInfo, str]:
        """A new key for ``tenant``: its record, and the key itself, which is shown only now."""
        if not re.match(TENANT_PATTERN, tenant):
            raise ValueError(f"tenant {tenant!r} must match {TENANT_PATTERN}")
        key_id, secret = secrets.token_hex(6), secrets.token_urlsafe(32)
        info = ApiKeyInfo(id=key_id, tenant=tenant, name=name, created_at=utc_now())
        record = {
            "tenant": tenant,
            "name": name,
            "hash": _digest(secret),
            "created_at": info.created_at.isoformat(),
        }
        pipe = self.redis.pipeline(transaction=True)
        pipe.hset(self.keys.api_key(key_id), mapping=cast(Any, record))  # redis-py's stubs: see redis_codec
        pipe.sadd(self.keys.api_keys(), key_id)
        pipe.execute()
        return info, f"kj_{key_id}_{secret}"

    def lookup(
        self, parts: tuple[str, str], window_seconds: int, client: str, failures: FailureLimit
    ) -> KeyLookup:
        """Where a parsed key's record is, the counter of this window's requests with it, and
        the failure counter of the client's address."""
        window = int(time.time()) // window_seconds
        return KeyLookup(
            self.keys.api_key(parts[0]),
            self.keys.rate(parts[0], window),
            window_seconds * 2,
            self.keys.auth_failures(client),
            _digest(parts[1]),
            failures.limit,
            failures.seconds,
        )

    @staticmethod
    def caller(lookup: KeyLookup, key_id: str, checked: Sequence[str | None], count: int) -> Caller | None:
        """The caller of a looked-up key, from its record's ``CHECKED_FIELDS`` and this window's
        request count; None unless the key is known, not revoked, and its secret matches."""
        tenant, expected, revoked_at = checked
        # Compare even for an unknown key, so the answer takes the same time either way.
        matches = hmac.compare_digest(lookup.digest, expected or _NO_HASH)
        if not matches or tenant is None or revoked_at:
            return None
        return Caller(tenant, key_id, count)

    def list(self) -> list[ApiKeyInfo]:
        """Every key, oldest first, without its secret hash."""
        ids = strings(self.redis.smembers(self.keys.api_keys()))
        pipe = self.redis.pipeline(transaction=False)
        for key_id in ids:
            pipe.hgetall(self.keys.api_key(key_id))
        infos = [_info(key_id, record) for key_id, record in zip(ids, pipe.execute(), strict=True) if record]
        return sorted(infos, key=lambda info: info.created_at)

    def revoke(self, key_id: str) -> bool:
        """Revoke a key at once; False when there is no such key."""
        if not self.redis.exists(self.keys.api_key(key_id)):
            return False
        self.redis.hset(self.keys.api_key(key_id), "revoked_at", utc_now().isoformat())
        return True
