"""The store the settings name: ``ARTIFACTS_URL`` (``s3://bucket/prefix``, or ``file:///path``),
or, without it, the local folder ``ARTIFACTS_DIR``."""

from pathlib import Path
from urllib.parse import unquote, urlsplit

from shared.settings import Settings
from shared.storage.base import ArtifactStore
from shared.storage.local import LocalStore
from shared.storage.s3 import S3Store


def open_store(settings: Settings) -> ArtifactStore:
    """The artifact store of ``settings``."""
    if settings.artifacts_url is None:
        return LocalStore(settings.artifacts_dir)
    parts = urlsplit(settings.artifacts_url)
    if parts.scheme == "s3":
        return S3Store(parts.netloc, parts.path)
    return LocalStore(Path(unquote(parts.path)))
