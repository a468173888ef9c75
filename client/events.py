"""The job's Server-Sent Events as typed values, decoded line by line."""

import json
from dataclasses import dataclass, field

from shared.models.jobs import EpochRecord, JobStatus


@dataclass(frozen=True)
class EpochEvent:
    """One finished epoch's record."""

    record: EpochRecord

    @property
    def epoch(self) -> int:
        """The epoch's 1-based index (also the event's id)."""
        return self.record.epoch


@dataclass(frozen=True)
class StateEvent:
    """A status change; ``last_epoch`` is the last epoch recorded when it was sent."""

    status: JobStatus
    last_epoch: int


JobEvent = EpochEvent | StateEvent


@dataclass
class EventDecoder:
    """Feeds on the stream's lines and returns each complete event once its blank line arrives.

    Comments (the keep-alives) and event types this client does not know are skipped, so a
    newer service that sends more kinds of events does not break an older client.
    """

    _event: str = ""
    _data: list[str] = field(default_factory=list)

    def feed(self, line: str) -> JobEvent | None:
        """The event that ``line`` completes, if it completes one."""
        if not line:
            return self._dispatch()
        if line.startswith(":"):
            return None
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "event":
            self._event = value
        elif name == "data":
            self._data.append(value)
        return None

    def _dispatch(self) -> JobEvent | None:
        kind, data = self._event, "\n".join(self._data)
        self._event, self._data = "", []
        if kind == "epoch":
            return EpochEvent(EpochRecord.model_validate_json(data))
        if kind == "state":
            state = json.loads(data)
            return StateEvent(JobStatus(state["status"]), int(state["last_epoch"]))
        return None
