"""The local-folder backend: each object a file under one folder (``ARTIFACTS_DIR``), written
under a temporary name and renamed into place. Workers on other hosts see it only if the folder
is shared storage; the start-up probe (``shared.storage.probe``) finds out."""

import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

from shared.storage.base import CHUNK_BYTES, ArtifactMissing, ArtifactStore, file_digest


class LocalStore(ArtifactStore):
    """Objects as files under ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.url = root.resolve().as_uri()

    def path(self, key: str) -> Path:
        """The file of ``key`` (keys are made by ``shared.storage.layout``; none climbs out)."""
        if key.startswith("/") or ".." in key.split("/"):
            raise ValueError(f"not an artifact key: {key!r}")
        return self.root / key

    def put_file(self, key: str, path: Path) -> None:
        self._place(key, lambda partial: shutil.copyfile(path, partial))

    def put_bytes(self, key: str, data: bytes) -> None:
        self._place(key, lambda partial: partial.write_bytes(data))

    def _place(self, key: str, write: Callable[[Path], object]) -> None:
        target = self.path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        # A name no other process or host uses, so that concurrent writers never share a file.
        partial = target.with_name(f".{target.name}.{uuid.uuid4().hex}.partial")
        try:
            write(partial)
            with partial.open("rb") as stream:
                os.fsync(stream.fileno())
            partial.replace(target)
        finally:
            partial.unlink(missing_ok=True)

    def fetch(self, key: str, path: Path) -> None:
        source = self._existing(key)
        partial = path.with_name(f".{path.name}.{uuid.uuid4().hex}.partial")
        try:
            shutil.copyfile(source, partial)
            partial.replace(path)
        finally:
            partial.unlink(missing_ok=True)

    def chunks(self, key: str) -> Iterator[bytes]:
        stream = self._existing(key).open("rb")

        def read() -> Iterator[bytes]:
            with stream:
                while chunk := stream.read(CHUNK_BYTES):
                    yield chunk

        return read()

    def checksum(self, key: str) -> str | None:
        path = self.path(key)
        return file_digest(path) if path.is_file() else None

    def size(self, key: str) -> int | None:
        path = self.path(key)
        return path.stat().st_size if path.is_file() else None

    def copy(self, source: str, target: str) -> bool:
        if not self.path(source).is_file():
            return False
        self.put_file(target, self.path(source))
        return True

    def delete(self, key: str) -> None:
        path = self.path(key)
        path.unlink(missing_ok=True)
        # Folders hold no object of their own: one left empty goes (an old checkpoint's, say).
        for folder in path.parents:
            if folder == self.root or self.root not in folder.parents:
                break
            try:
                folder.rmdir()
            except OSError:  # not empty, or gone already
                break

    def keys(self, prefix: str) -> list[str]:
        folder = prefix.rpartition("/")[0]
        base = self.path(folder) if folder else self.root
        if not base.is_dir():
            return []
        found = (p for p in base.rglob("*") if p.is_file() and not p.name.endswith(".partial"))
        keys = (p.relative_to(self.root).as_posix() for p in found)
        return sorted(key for key in keys if key.startswith(prefix))

    def delete_prefix(self, prefix: str) -> None:
        super().delete_prefix(prefix)
        if prefix.endswith("/"):  # a folder's objects are gone: the folder (and what is left) too
            shutil.rmtree(self.path(prefix.rstrip("/")), ignore_errors=True)

    def local_path(self, key: str) -> Path | None:
        return self.path(key)

    def _existing(self, key: str) -> Path:
        path = self.path(key)
        if not path.is_file():
            raise ArtifactMissing(key)
        return path
