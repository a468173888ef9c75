"""Optuna's state of every search, in Redis: Optuna's journal storage on its Redis backend, under
the service's key prefix (``<prefix>:optuna``), so any process (the API, any worker) reads and
writes the same studies, and a restarted one carries on where the others left off.

The backend is Optuna's own, on the service's Redis client (Sentinel and TLS included), with
one change: no snapshots. Optuna writes them in Python's object serialization, which can run code
when loaded, and the service loads nothing of that kind from a store that others can write;
each process replays the journal instead (JSON lines), once, then reads only what is new.
"""

from functools import cache

import optuna
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalRedisBackend
from redis import Redis

from shared.models.search import PrunerOptions, SamplerOptions
from shared.redis.keys import RedisKeys

optuna.logging.set_verbosity(optuna.logging.WARNING)


class ServiceJournal(JournalRedisBackend):
    """Optuna's Redis journal on a client of the service's, without its snapshots."""

    def __init__(self, redis: Redis, prefix: str) -> None:
        # Not the parent's __init__, which makes a client of its own from a URL.
        self._url, self._redis, self._use_cluster, self._prefix = "", redis, False, prefix

    def save_snapshot(self, snapshot: bytes) -> None:
        """Keep no snapshot: Optuna's are Python objects serialized, not JSON."""

    def load_snapshot(self) -> bytes | None:
        """No snapshot: the journal is replayed."""
        return None


def journal_prefix(keys: RedisKeys) -> str:
    """Where the journal's keys live: under the service's prefix."""
    return f"{keys.prefix}:optuna"


@cache
def storage_on(redis: Redis, prefix: str) -> JournalStorage:
    """The process's journal storage on ``redis`` (one per client: it keeps what it replayed)."""
    return JournalStorage(ServiceJournal(redis, prefix))


def make_sampler(options: SamplerOptions, draw: int) -> optuna.samplers.BaseSampler:
    """A sampler for the ``draw``-th point of a search: seeded from the search's seed and the
    draw, so that a process that starts again never draws again what an earlier one drew. A grid
    search's points are enqueued one by one (``shared.studies.space.next_point``): its sampler
    only places them."""
    seed = None if options.seed is None else options.seed * 100_003 + draw
    if options.type in ("random", "grid"):
        return optuna.samplers.RandomSampler(seed=seed)
    if options.type == "qmc":
        # Sobol's sequence is drawn by position: its seed scrambles it the same in every process.
        return optuna.samplers.QMCSampler(seed=options.seed, warn_independent_sampling=False)
    startup = options.startup_trials or 10
    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=startup, constant_liar=True)


def make_pruner(options: PrunerOptions, max_epochs: int) -> optuna.pruners.BasePruner:
    """The pruner a search's trials are judged by at each epoch record."""
    if options.type == "asha":
        return optuna.pruners.SuccessiveHalvingPruner(
            min_resource=options.min_epochs, reduction_factor=options.reduction_factor
        )
    if options.type == "hyperband":
        return optuna.pruners.HyperbandPruner(
            min_resource=options.min_epochs,
            max_resource=max_epochs,
            reduction_factor=options.reduction_factor,
        )
    if options.type == "none":
        return optuna.pruners.NopPruner()
    return optuna.pruners.MedianPruner(
        n_startup_trials=options.startup_trials, n_warmup_steps=options.min_epochs - 1
    )
