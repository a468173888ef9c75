"""Start-up checks of the artifact store, so that a store a process cannot use is found when it
starts, not at a job's first checkpoint or resume.

Every process writes, reads back and deletes a probe object (``round_trip``). A store that each
process can use may still not be the same one: two hosts' local folders, where a shared volume
was meant. So each API process, at start, leaves a probe object of its own in the store and
names it in Redis (``Handshake.publish``); a worker checks that it sees that object
(``Handshake.verify``), and refuses to start if it does not.
"""

import logging
import time
import uuid

from redis import Redis

from shared.models.artifacts import StoreStatus
from shared.ops.refreshed import Refreshed
from shared.redis.keys import RedisKeys
from shared.storage.base import ArtifactCorrupt, ArtifactMissing, ArtifactStore, StoreUnavailable
from shared.storage.layout import probe_key

log = logging.getLogger(__name__)

REFRESH_SECONDS = 30.0
"""How long the API's last check stands before ``/readyz`` makes another."""
FAILURES = (StoreUnavailable, ArtifactMissing, ArtifactCorrupt, OSError)


def round_trip(store: ArtifactStore, name: str) -> None:
    """Write, read back and delete a probe object; raises what went wrong."""
    key, token = probe_key(f"{name}-{uuid.uuid4().hex}"), uuid.uuid4().hex.encode()
    store.put_bytes(key, token)
    try:
        if store.read_bytes(key) != token:
            raise ArtifactCorrupt(f"the probe {key!r} read back other bytes than were written")
    finally:
        store.delete(key)


def check(store: ArtifactStore, name: str) -> StoreStatus:
    """``round_trip`` as a status."""
    try:
        round_trip(store, name)
    except FAILURES as exc:
        return StoreStatus(url=store.url, ok=False, error=f"{type(exc).__name__}: {exc}")
    return StoreStatus(url=store.url, ok=True)


class Handshake:
    """The probe object the API processes leave in the store, named in Redis."""

    def __init__(self, store: ArtifactStore, redis: Redis, keys: RedisKeys) -> None:
        self.store, self.redis, self.key = store, redis, keys.artifacts_handshake()

    def publish(self) -> None:
        """Leave a new probe object, name it, and delete the one it replaces."""
        token = uuid.uuid4().hex
        self.store.put_bytes(probe_key(f"api-{token}"), token.encode())
        previous = self.redis.getset(self.key, token)
        if previous is not None and str(previous) != token:
            self.store.delete(probe_key(f"api-{previous!s}"))

    def verify(self) -> bool | None:
        """Whether this process sees the API's probe object; None while no API has left one."""
        for _ in range(2):  # an API starting meanwhile may replace the one just named
            named = self.redis.get(self.key)
            if named is None:
                return None
            token = str(named)  # the service's clients decode replies
            try:
                if self.store.read_bytes(probe_key(f"api-{token}")) == token.encode():
                    return True
            except ArtifactMissing:
                time.sleep(0.5)
        return False


def store_watch(store: ArtifactStore, refresh_seconds: float = REFRESH_SECONDS) -> Refreshed[StoreStatus]:
    """The API's store check, made again at most every ``refresh_seconds``, so ``/readyz``
    probes the store without a round trip on every call."""

    def checked() -> StoreStatus:
        status = check(store, "api")
        if not status.ok:
            log.error("the artifact store %s cannot be used: %s", status.url, status.error)
        return status

    return Refreshed(checked, refresh_seconds)
