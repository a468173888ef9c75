"""A worker's local copies of what it reads from the artifact store (uploaded datasets, the
checkpoint a resumed attempt starts from), checked against their checksums and bounded in size.

Objects never change once written, so a copy whose recorded checksum is the object's is the
object. Several worker processes of one host may share the folder: copies are written under a
temporary name and renamed into place, and the least recently used go when the folder holds
more than its bound, except those used in the last minutes (another process may be opening one).
"""

import logging
import os
import time
from pathlib import Path

from shared.storage.base import ArtifactMissing, ArtifactStore

log = logging.getLogger(__name__)

DIGEST_SUFFIX = ".sha256"
KEEP_RECENT_SECONDS = 600.0
"""A copy used this recently is never evicted, whatever the bound."""


class ArtifactCache:
    """Copies of ``store``'s objects in ``folder``, at most ``max_bytes`` of them (but recent ones)."""

    def __init__(self, store: ArtifactStore, folder: Path, max_bytes: int) -> None:
        self.store, self.folder, self.max_bytes = store, folder, max_bytes

    def path(self, key: str) -> Path:
        """A local file holding the object ``key``: the store's own where it is a local folder,
        else a checked copy; ``ArtifactMissing`` when there is no such object."""
        own = self.store.local_path(key)
        if own is not None:
            if not own.is_file():
                raise ArtifactMissing(key)
            return own
        expected = self.store.checksum(key)
        if expected is None:
            raise ArtifactMissing(key)
        copy = self.folder / key
        if copy.is_file() and _recorded(copy) == expected:
            os.utime(copy)  # the least recently used go first
            return copy
        copy.parent.mkdir(parents=True, exist_ok=True)
        self.store.fetch(key, copy)  # checked against ``expected``, whole or not at all
        _digest_file(copy).write_text(expected)
        log.info("cached %s (%d bytes)", key, copy.stat().st_size)
        self.trim()
        return copy

    def trim(self) -> None:
        """Evict the least recently used copies while the folder holds more than its bound."""
        copies = sorted(
            (p for p in self.folder.rglob("*") if p.is_file() and not _is_bookkeeping(p)),
            key=lambda p: p.stat().st_mtime,
        )
        total = sum(p.stat().st_size for p in copies)
        cutoff = time.time() - KEEP_RECENT_SECONDS
        for copy in copies:
            if total <= self.max_bytes or copy.stat().st_mtime > cutoff:
                break
            total -= copy.stat().st_size
            copy.unlink(missing_ok=True)
            _digest_file(copy).unlink(missing_ok=True)


def _digest_file(copy: Path) -> Path:
    return copy.with_name(copy.name + DIGEST_SUFFIX)


def _recorded(copy: Path) -> str | None:
    try:
        return _digest_file(copy).read_text().strip()
    except OSError:
        return None


def _is_bookkeeping(path: Path) -> bool:
    return path.name.endswith((DIGEST_SUFFIX, ".partial"))
