"""The artifact store: where models, epoch checkpoints and uploaded datasets are kept, behind one
small interface (``ArtifactStore``) with two backends, a local folder and any S3-compatible
object store, chosen by the ``ARTIFACTS_URL`` setting (``open_store``)."""

from shared.storage.base import ArtifactCorrupt, ArtifactMissing, ArtifactStore, StoreUnavailable
from shared.storage.opening import open_store

__all__ = ["ArtifactCorrupt", "ArtifactMissing", "ArtifactStore", "StoreUnavailable", "open_store"]
