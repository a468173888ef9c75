"""A worker's check of its Redis before it takes any task: it refuses a Redis that may evict keys
(the jobs it would be given among them) unless ``REDIS_ALLOW_EVICTION`` is true, and logs every
other way the Redis falls short of the contract (``shared.ops.redis_contract``)."""

import logging
import math

from shared.models.redis_contract import RedisContract
from shared.ops.redis_contract import check_contract, log_findings
from shared.redis.connection import connect
from shared.settings import Settings
from worker.retry import with_retries

log = logging.getLogger(__name__)

EXIT_REFUSED = 78
"""The exit status of a worker that refuses its Redis: EX_CONFIG of sysexits.h, a configuration
to fix."""


class RedisRefused(SystemExit):
    """The worker will not start on this Redis. A SystemExit, because Celery's signals log any
    other exception of a receiver and go on; this one ends the worker's start with its status."""

    def __init__(self) -> None:
        super().__init__(EXIT_REFUSED)


def read_contract(settings: Settings) -> RedisContract:
    """The contract of ``REDIS_URL``'s Redis, waiting for it to answer as long as it takes (as
    the worker's broker connection would)."""
    redis = connect(settings)
    try:
        return with_retries(lambda: check_contract(redis), "Redis contract check", math.inf)
    finally:
        # Closed before the worker goes on: a prefork parent must not hand it to its children.
        redis.close()


def admits(contract: RedisContract, allow_eviction: bool) -> bool:
    """Whether a worker may start on a Redis with ``contract``; logs why not, or why anyway."""
    log_findings(contract, log)
    if contract.ok:
        return True
    policy = contract.maxmemory_policy
    if allow_eviction:
        log.warning("REDIS_ALLOW_EVICTION is true: starting on a Redis whose maxmemory-policy is %s", policy)
        return True
    log.critical(
        "refusing to start: Redis's maxmemory-policy is %s, which may evict jobs and queued tasks; "
        "set it to noeviction, or set REDIS_ALLOW_EVICTION=true to start anyway",
        policy,
    )
    return False


def check_redis(settings: Settings) -> None:
    """Raise ``RedisRefused`` unless a worker may start on the settings' Redis."""
    if not admits(read_contract(settings), settings.redis_allow_eviction):
        raise RedisRefused
