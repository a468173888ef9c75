"""What the sync and async clients share beyond the calls: headers, requests, files."""

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import IO, Any

from client.calls import Call
from client.config import resolve_api_key
from client.errors import KJobsError

USER_AGENT = "kjobs-client/0.1"
DEFAULT_TIMEOUT_SECONDS = 30.0


def default_headers(api_key: str | None, extra: dict[str, str] | None) -> dict[str, str]:
    """The headers of every request: who is asking, and the API key when there is one."""
    key = resolve_api_key(api_key)
    auth = {"Authorization": f"Bearer {key}"} if key else {}
    return {"User-Agent": USER_AGENT, **auth, **(extra or {})}


def request_arguments(call: Call[Any]) -> dict[str, Any]:
    """The arguments of ``build_request`` for ``call`` (built afresh for each try)."""
    arguments: dict[str, Any] = {
        "method": call.method,
        "url": call.path,
        "params": call.params,
        "json": call.json,
        "files": call.files,
        "data": call.data,
        "headers": call.headers,
    }
    if call.timeout is not None:
        arguments["timeout"] = call.timeout
    return arguments


def read_files(paths: Sequence[str | Path]) -> list[tuple[str, bytes]]:
    """Upload parts from files: their names and contents (read now, so a retry can send them again)."""
    try:
        return [(Path(path).name, Path(path).read_bytes()) for path in paths]
    except OSError as error:
        raise KJobsError(f"cannot read {error.filename}: {error.strerror}") from None


class PartialFile:
    """Writes a download beside its target and moves it into place only once it is complete."""

    def __init__(self, target: str | Path) -> None:
        self.target = Path(target)
        self.partial = self.target.with_name(f".{self.target.name}.part")

    def open(self) -> IO[bytes]:
        """The partial file, empty, to write the chunks to."""
        return self.partial.open("wb")

    def write(self, chunks: Iterable[bytes]) -> None:
        """Write every chunk."""
        with self.open() as out:
            for chunk in chunks:
                out.write(chunk)

    def commit(self) -> Path:
        """Move the complete file to its target."""
        self.partial.replace(self.target)
        return self.target

    def discard(self) -> None:
        """Remove what an interrupted download left."""
        self.partial.unlink(missing_ok=True)
