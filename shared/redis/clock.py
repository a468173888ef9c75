"""Redis's clock: the one clock every host of the service shares, for times they compare (leases,
dispatch deadlines), so that a host whose own clock is off by seconds or minutes cannot make a
live lease look expired to the others, or an expired one look live."""

from typing import Any


def redis_seconds(client: Any) -> float:
    """Redis's ``TIME`` in seconds since the epoch, on a client or on a pipeline that watches (whose
    commands run at once until ``multi``)."""
    seconds, microseconds = client.time()
    return int(seconds) + int(microseconds) / 1_000_000
