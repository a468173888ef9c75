"""A worker's cache of what it reads from an S3 store: checked copies, reused while they match,
bounded in size; a local store is read in place."""

import os
import time
import uuid
from pathlib import Path

import pytest

from shared.storage import ArtifactMissing
from shared.storage.local import LocalStore
from shared.storage.s3 import S3Store
from tests.s3_server import S3Server
from worker.cache import KEEP_RECENT_SECONDS, ArtifactCache


@pytest.fixture
def s3(s3_server: S3Server) -> S3Store:
    bucket = f"tests-{uuid.uuid4().hex[:12]}"
    s3_server.create_bucket(bucket)
    return S3Store(bucket)


def test_a_copy_is_made_once_and_reused_while_it_matches(s3: S3Store, tmp_path: Path) -> None:
    s3.put_bytes("datasets/d.npz", b"arrays")
    cache = ArtifactCache(s3, tmp_path, max_bytes=1 << 20)
    first = cache.path("datasets/d.npz")
    assert first.read_bytes() == b"arrays"
    first.write_bytes(b"tampered")  # the copy no longer what the store holds: fetched again
    (tmp_path / "datasets" / "d.npz.sha256").write_text("0" * 64)
    assert cache.path("datasets/d.npz").read_bytes() == b"arrays"
    with pytest.raises(ArtifactMissing):
        cache.path("datasets/none.npz")


def test_the_least_recently_used_copies_go_past_the_bound(s3: S3Store, tmp_path: Path) -> None:
    cache = ArtifactCache(s3, tmp_path, max_bytes=250)
    for hours_ago, name in ((3, "a"), (2, "b"), (1, "c")):
        s3.put_bytes(f"d/{name}", bytes(100))
        used = time.time() - KEEP_RECENT_SECONDS - 3600 * hours_ago
        os.utime(cache.path(f"d/{name}"), (used, used))
    cache.trim()
    assert sorted(p.name for p in (tmp_path / "d").iterdir() if not p.name.endswith(".sha256")) == ["b", "c"]


def test_recent_copies_stay_whatever_the_bound(s3: S3Store, tmp_path: Path) -> None:
    cache = ArtifactCache(s3, tmp_path, max_bytes=10)
    s3.put_bytes("d/a", bytes(100))
    assert cache.path("d/a").is_file(), "in use right now: never evicted"


def test_a_local_store_is_read_in_place(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "store")
    store.put_bytes("datasets/d.npz", b"arrays")
    cache = ArtifactCache(store, tmp_path / "cache", max_bytes=0)
    assert cache.path("datasets/d.npz") == store.path("datasets/d.npz")
    assert not (tmp_path / "cache").exists()
