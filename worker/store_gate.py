"""A worker's check of the artifact store before it takes any task: it must be able to write,
read and delete a probe object, and see the probe object the API left (``shared.storage.probe``),
or it refuses to start: a job it took could neither checkpoint nor be resumed elsewhere."""

import logging
import math
import time

from shared.models.artifacts import StoreStatus
from shared.redis.connection import connect
from shared.redis.keys import RedisKeys
from shared.settings import Settings
from shared.storage import ArtifactStore, StoreUnavailable, open_store
from shared.storage.probe import Handshake, check
from worker.redis_gate import EXIT_REFUSED
from worker.retry import with_retries

log = logging.getLogger(__name__)


class StoreRefused(SystemExit):
    """The worker will not start on this artifact store (a SystemExit: see ``RedisRefused``)."""

    def __init__(self) -> None:
        super().__init__(EXIT_REFUSED)


def check_store(settings: Settings) -> None:
    """Raise ``StoreRefused`` unless the settings' artifact store is usable and is the API's."""
    store = open_store(settings)
    status = usable(store, settings.artifacts_check_seconds)
    if not status.ok:
        log.critical("refusing to start: the artifact store %s cannot be used: %s", store.url, status.error)
        raise StoreRefused
    if shares_the_apis(store, settings) is False:
        log.critical(
            "refusing to start: the probe object the API left in %s is not there for this worker, "
            "which does not share the API's artifact store (a shared volume not mounted here?)",
            store.url,
        )
        raise StoreRefused


def usable(store: ArtifactStore, seconds: float) -> StoreStatus:
    """The store's check, tried again with backoff for ``seconds`` while it fails."""
    delay, deadline = 1.0, time.monotonic() + seconds
    while not (status := check(store, "worker")).ok and time.monotonic() + delay < deadline:
        log.warning(
            "the artifact store %s cannot be used (%s); trying again in %.0f s",
            store.url,
            status.error,
            delay,
        )
        time.sleep(delay)
        delay = min(delay * 2, 10.0)
    return status


def shares_the_apis(store: ArtifactStore, settings: Settings) -> bool | None:
    """Whether this worker sees the API's probe object (None while no API has left one), waiting
    for Redis as long as it takes, as the worker's broker connection would."""
    redis = connect(settings)
    try:
        handshake = Handshake(store, redis, RedisKeys(settings.key_prefix))
        seen = with_retries(handshake.verify, "the API's probe object", math.inf)
    except StoreUnavailable:
        return False
    finally:
        redis.close()  # before the worker forks its pool: no child shares it
    if seen is None:
        log.warning("no API has left its probe object yet: whether this worker shares its store is unchecked")
    return seen
