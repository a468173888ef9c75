"""Optimistic transactions: read under WATCH, write in MULTI, start over when a watched key changed."""

from collections.abc import Callable, Sequence
from typing import TypeVar

from redis import Redis
from redis.client import Pipeline
from redis.exceptions import WatchError

T = TypeVar("T")


def watched(redis: Redis, keys: Sequence[str], step: Callable[[Pipeline], T]) -> T:
    """Run ``step`` on a pipeline that watches ``keys``: it reads through the pipeline (the reads
    run at once), then writes after ``pipe.multi()`` and executes, or unwatches and writes nothing.
    A change to a watched key before the execute runs ``step`` again, on what changed."""
    with redis.pipeline(transaction=True) as pipe:
        while True:
            try:
                pipe.watch(*keys)  # type: ignore[no-untyped-call]
                return step(pipe)
            except WatchError:
                continue
