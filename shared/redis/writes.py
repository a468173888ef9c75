"""Writes recorded once and sent one of two ways: queued on a MULTI transaction, or run by a Lua
script that declares every key they touch (``shared.redis.scripts``).

The stores describe each change (a job's record, its indexes, counters, webhook events) as a
``Writes`` in one place, whichever way it is then sent, so a job is written the same way when
a script creates it atomically with its checks and when a transaction changes its status.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from redis.client import Pipeline

Word = str | int | float
FROM_NOW = "ZADD_FROM_NOW"
"""The pseudo-command of ``Writes.zadd_from_now``, which ``GUARDED_WRITES`` runs as a ZADD."""


@dataclass(frozen=True)
class Command:
    """One write: its name, the key it touches (None for PUBLISH, whose channel is not a key)
    and its other arguments."""

    name: str
    key: str | None
    args: tuple[Word, ...]


@dataclass
class Writes:
    """An ordered list of writes, each of which touches at most one key."""

    commands: list[Command] = field(default_factory=list)

    def _add(self, name: str, key: str | None, *args: Word) -> None:
        self.commands.append(Command(name, key, args))

    def hset(self, key: str, fields: Mapping[str, str]) -> None:
        """Set hash fields (already encoded)."""
        self._add("HSET", key, *(word for pair in fields.items() for word in pair))

    def hincrby(self, key: str, name: str, amount: int = 1) -> None:
        self._add("HINCRBY", key, name, amount)

    def hincrbyfloat(self, key: str, name: str, amount: float) -> None:
        self._add("HINCRBYFLOAT", key, name, amount)

    def rpush(self, key: str, *values: str) -> None:
        self._add("RPUSH", key, *values)

    def zadd(
        self, key: str, members: Mapping[str, float], *, only_new: bool = False, only_lower: bool = False
    ) -> None:
        """Add sorted-set members; ``only_new`` keeps the score of a member already there,
        ``only_lower`` keeps it unless the new score is lower."""
        flags = (["NX"] if only_new else []) + (["LT"] if only_lower else [])
        words = [word for member, score in members.items() for word in (score, member)]
        self._add("ZADD", key, *flags, *words)

    def zadd_from_now(self, key: str, member: str, seconds: float) -> None:
        """Add a sorted-set member scored ``seconds`` after Redis's own clock (epoch ms), so that no
        host's clock sets a deadline. Only a script can read the clock between its writes, so only
        ``script_words`` takes this write (as the pseudo-command ``ZADD_FROM_NOW``)."""
        self._add(FROM_NOW, key, int(seconds * 1000), member)

    def hdel(self, key: str, *names: str) -> None:
        self._add("HDEL", key, *names)

    def zrem(self, key: str, *members: str) -> None:
        self._add("ZREM", key, *members)

    def set(self, key: str, value: str, *, expire_seconds: int | None = None) -> None:
        expiry: list[Word] = [] if expire_seconds is None else ["EX", expire_seconds]
        self._add("SET", key, value, *expiry)

    def expire(self, key: str, seconds: int) -> None:
        self._add("EXPIRE", key, seconds)

    def delete(self, *keys: str) -> None:
        for key in keys:
            self._add("DEL", key)

    def publish(self, channel: str, message: str) -> None:
        self._add("PUBLISH", None, channel, message)

    def extend(self, other: "Writes") -> None:
        """Append another list's writes after these."""
        self.commands.extend(other.commands)

    def keys(self) -> list[str]:
        """Every key the writes touch, once each, in the order they are first touched."""
        return list(dict.fromkeys(c.key for c in self.commands if c.key is not None))

    def queue_on(self, pipe: Pipeline) -> None:
        """Queue every write on ``pipe`` (after its ``multi()``, for a transaction)."""
        for command in self.commands:
            if command.name == FROM_NOW:
                raise ValueError("a score from Redis's clock is written by a script, not a transaction")
            key = () if command.key is None else (command.key,)
            pipe.execute_command(command.name, *key, *command.args)  # type: ignore[no-untyped-call]

    def script_words(self, key_numbers: Mapping[str, int]) -> list[Any]:
        """The writes as a script's arguments: per command, how many words it takes here (this
        count included), the number of its key in KEYS (0 for none), its name and its other
        arguments."""
        words: list[Any] = []
        for command in self.commands:
            number = 0 if command.key is None else key_numbers[command.key]
            words += [len(command.args) + 3, number, command.name, *command.args]
        return words
