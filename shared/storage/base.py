"""The interface every artifact store backend keeps, and what can go wrong with one.

Objects are immutable once written (every key names one job's attempt and epoch, or one
dataset), and each becomes visible only complete: a reader sees the whole object or none. Each
carries the SHA-256 of its bytes, which a copy brought to another host is checked against.
"""

import hashlib
from abc import ABC, abstractmethod
from collections.abc import Iterator
from pathlib import Path

from shared.errors import KerasJobsError, ServiceUnavailable

CHUNK_BYTES = 1 << 20


class ArtifactMissing(KerasJobsError):
    """No object has this key."""

    def __init__(self, key: str) -> None:
        super().__init__(f"no artifact {key!r} in the store")
        self.key = key


class ArtifactCorrupt(KerasJobsError):
    """An object's bytes do not match its checksum."""


class StoreUnavailable(ServiceUnavailable):
    """The artifact store cannot be reached, or refuses the service's credentials."""


class ArtifactStore(ABC):
    """Immutable objects by key (``shared.storage.layout`` names them), with their checksums."""

    url: str
    """Where the store is, for logs and ``/readyz`` (without credentials)."""

    @abstractmethod
    def put_file(self, key: str, path: Path) -> None:
        """Store a local file's bytes under ``key``, visible only once whole."""

    @abstractmethod
    def put_bytes(self, key: str, data: bytes) -> None:
        """Store ``data`` under ``key``, visible only once whole."""

    @abstractmethod
    def fetch(self, key: str, path: Path) -> None:
        """Write the object to the local file ``path`` (whole or not at all), checked against its
        checksum; ``ArtifactMissing`` when there is none, ``ArtifactCorrupt`` on a mismatch."""

    @abstractmethod
    def chunks(self, key: str) -> Iterator[bytes]:
        """The object's bytes, a chunk at a time (for streaming); ``ArtifactMissing``."""

    @abstractmethod
    def checksum(self, key: str) -> str | None:
        """The SHA-256 (hex) the object was stored with; None when there is no such object."""

    @abstractmethod
    def size(self, key: str) -> int | None:
        """The object's size in bytes; None when there is no such object."""

    @abstractmethod
    def copy(self, source: str, target: str) -> bool:
        """Copy an object within the store (without passing its bytes through this process where
        the store can); False when ``source`` does not exist."""

    @abstractmethod
    def delete(self, key: str) -> None:
        """Delete an object (nothing when there is none)."""

    @abstractmethod
    def keys(self, prefix: str) -> list[str]:
        """The keys that start with ``prefix``."""

    def delete_prefix(self, prefix: str) -> None:
        """Delete every object whose key starts with ``prefix``."""
        for key in self.keys(prefix):
            self.delete(key)

    def read_bytes(self, key: str) -> bytes:
        """A small object's bytes; ``ArtifactMissing``."""
        return b"".join(self.chunks(key))

    def presigned_url(self, key: str, seconds: int) -> str | None:
        """A URL that lets anyone holding it read the object for ``seconds``; None where the
        backend has no such thing (a local folder)."""
        return None

    def local_path(self, key: str) -> Path | None:
        """The object's own file where the store is a folder on this host (read it in place);
        None otherwise."""
        return None


def file_digest(path: Path) -> str:
    """The SHA-256 (hex) of a file's bytes."""
    with path.open("rb") as stream:
        return hashlib.file_digest(stream, "sha256").hexdigest()


def check_digest(key: str, path: Path, expected: str | None) -> None:
    """``ArtifactCorrupt`` unless ``path`` holds the bytes whose SHA-256 is ``expected``."""
    actual = file_digest(path)
    if expected is not None and actual != expected:
        raise ArtifactCorrupt(f"artifact {key!r}: checksum {actual} where {expected} was stored")
