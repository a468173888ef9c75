"""Both artifact store backends against real storage: a folder, and an S3 server over HTTP (the
S3 backend does not know which server it talks to)."""

import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from shared.settings import Settings
from shared.storage import ArtifactCorrupt, ArtifactMissing, ArtifactStore, StoreUnavailable, open_store
from shared.storage.local import LocalStore
from shared.storage.s3 import S3Store
from tests.s3_server import S3Server


@pytest.fixture(params=["local", "s3"])
def artifacts(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ArtifactStore]:
    if request.param == "local":
        yield LocalStore(tmp_path / "store")
        return
    server: S3Server = request.getfixturevalue("s3_server")
    bucket = f"tests-{uuid.uuid4().hex[:12]}"
    server.create_bucket(bucket)
    yield S3Store(bucket, "deployment/a")


def test_an_object_reads_back_whole_with_its_checksum(artifacts: ArtifactStore, tmp_path: Path) -> None:
    data = bytes(range(256)) * 5000
    source = tmp_path / "source.bin"
    source.write_bytes(data)
    artifacts.put_file("job/model.keras", source)
    artifacts.put_bytes("job/state.json", b"{}")
    assert artifacts.size("job/model.keras") == len(data)
    assert artifacts.read_bytes("job/model.keras") == data
    assert sorted(artifacts.keys("job/")) == ["job/model.keras", "job/state.json"]
    target = tmp_path / "copy.bin"
    artifacts.fetch("job/model.keras", target)
    assert target.read_bytes() == data
    assert artifacts.checksum("job/model.keras") == _sha256(data)


def test_a_missing_object_is_named(artifacts: ArtifactStore, tmp_path: Path) -> None:
    assert artifacts.size("nothing") is None
    assert artifacts.checksum("nothing") is None
    with pytest.raises(ArtifactMissing, match="nothing"):
        artifacts.fetch("nothing", tmp_path / "x")
    with pytest.raises(ArtifactMissing):
        artifacts.read_bytes("nothing")
    assert not artifacts.copy("nothing", "else")
    assert not (tmp_path / "x").exists()


def test_copy_delete_and_delete_prefix(artifacts: ArtifactStore) -> None:
    artifacts.put_bytes("job/checkpoints/attempt-1-epoch-0001/model.keras", b"m1")
    artifacts.put_bytes("job/checkpoints/attempt-1-epoch-0002/model.keras", b"m2")
    assert artifacts.copy("job/checkpoints/attempt-1-epoch-0002/model.keras", "job/model.attempt-2.keras")
    assert artifacts.checksum("job/model.attempt-2.keras") == _sha256(b"m2")
    artifacts.delete("job/checkpoints/attempt-1-epoch-0001/model.keras")
    assert artifacts.keys("job/checkpoints/") == ["job/checkpoints/attempt-1-epoch-0002/model.keras"]
    artifacts.delete_prefix("job/checkpoints/")
    assert artifacts.keys("job/") == ["job/model.attempt-2.keras"]


def test_a_presigned_url_reads_the_object_without_credentials(s3_server: S3Server) -> None:
    bucket = f"tests-{uuid.uuid4().hex[:12]}"
    s3_server.create_bucket(bucket)
    store = S3Store(bucket)
    store.put_bytes("job/model.keras", b"weights")
    url = store.presigned_url("job/model.keras", 60)
    assert url is not None
    assert httpx.get(url).content == b"weights"
    assert LocalStore(Path("unused")).presigned_url("job/model.keras", 60) is None


def test_a_download_that_does_not_match_its_checksum_is_refused(s3_server: S3Server, tmp_path: Path) -> None:
    bucket = f"tests-{uuid.uuid4().hex[:12]}"
    s3_server.create_bucket(bucket)
    store = S3Store(bucket)
    name = store.name("job/model.keras")
    store.client.put_object(Bucket=bucket, Key=name, Body=b"bytes", Metadata={"sha256": "0" * 64})
    with pytest.raises(ArtifactCorrupt):
        store.fetch("job/model.keras", tmp_path / "model.keras")
    assert not (tmp_path / "model.keras").exists()


def test_a_bucket_that_does_not_exist_is_a_store_unavailable(s3_server: S3Server) -> None:
    with pytest.raises(StoreUnavailable):
        S3Store("no-such-bucket").put_bytes("probe", b"x")


def test_the_settings_choose_the_backend(s3_server: S3Server, tmp_path: Path) -> None:
    local = open_store(Settings(artifacts_dir=tmp_path))
    assert isinstance(local, LocalStore)
    assert local.root == tmp_path
    s3 = open_store(Settings(artifacts_url="s3://models/deployment/a"))
    assert isinstance(s3, S3Store)
    assert (s3.bucket, s3.prefix, s3.url) == ("models", "deployment/a", "s3://models/deployment/a")
    assert isinstance(open_store(Settings(artifacts_url=f"file://{tmp_path}")), LocalStore)


def _sha256(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()
