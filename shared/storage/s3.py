"""The S3 backend, for any S3-compatible object store (AWS S3, MinIO, Ceph's gateway, R2), with
boto3: the endpoint, region and credentials come from the variables and files every AWS tool
reads (``AWS_ENDPOINT_URL``, ``AWS_REGION``, ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``,
``~/.aws``), so the environment that works for the ``aws`` CLI works here.

An object is visible only once its upload completed (a PUT, or a multipart upload's last step,
is atomic in S3), and carries its SHA-256 in its metadata, which a download is checked against.
"""

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from shared.storage.base import (
    CHUNK_BYTES,
    ArtifactMissing,
    ArtifactStore,
    StoreUnavailable,
    check_digest,
    file_digest,
)

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

DIGEST = "sha256"
"""The metadata entry (``x-amz-meta-sha256``) that holds an object's SHA-256."""
MISSING_CODES = frozenset({"404", "NoSuchKey", "NotFound"})
# Bounded waits, so a store that went away fails a request in seconds rather than hanging it;
# boto3's standard mode retries what it can (throttling, 5xx, dropped connections).
CLIENT_CONFIG = Config(connect_timeout=5, read_timeout=60, retries={"max_attempts": 5, "mode": "standard"})


class S3Store(ArtifactStore):
    """Objects under ``prefix`` in ``bucket``."""

    def __init__(self, bucket: str, prefix: str = "", client: "S3Client | None" = None) -> None:
        self.bucket, self.prefix = bucket, prefix.strip("/")
        self.url = f"s3://{bucket}/{self.prefix}".rstrip("/")
        self.client: S3Client = client or boto3.session.Session().client("s3", config=CLIENT_CONFIG)
        self.transfers = TransferConfig(multipart_threshold=64 * CHUNK_BYTES)

    def name(self, key: str) -> str:
        """The object name of ``key`` in the bucket."""
        return f"{self.prefix}/{key}" if self.prefix else key

    def put_file(self, key: str, path: Path) -> None:
        extra = {"Metadata": {DIGEST: file_digest(path)}}
        self._call(
            self.client.upload_file,
            str(path),
            self.bucket,
            self.name(key),
            ExtraArgs=extra,
            Config=self.transfers,
        )

    def put_bytes(self, key: str, data: bytes) -> None:
        digest = _bytes_digest(data)
        self._call(
            self.client.put_object,
            Bucket=self.bucket,
            Key=self.name(key),
            Body=data,
            Metadata={DIGEST: digest},
        )

    def fetch(self, key: str, path: Path) -> None:
        expected = self.checksum(key)
        if expected is None:
            raise ArtifactMissing(key)
        partial = path.with_name(f".{path.name}.{uuid.uuid4().hex}.partial")
        try:
            self._call(
                self.client.download_file,
                self.bucket,
                self.name(key),
                str(partial),
                Config=self.transfers,
                key=key,
            )
            check_digest(key, partial, expected)
            partial.replace(path)
        finally:
            partial.unlink(missing_ok=True)

    def chunks(self, key: str) -> Iterator[bytes]:
        answer = self._call(self.client.get_object, Bucket=self.bucket, Key=self.name(key), key=key)
        body = answer["Body"]

        def read() -> Iterator[bytes]:
            with body:
                yield from body.iter_chunks(CHUNK_BYTES)

        return read()

    def checksum(self, key: str) -> str | None:
        head = self._head(key)
        return None if head is None else str(head.get("Metadata", {}).get(DIGEST, "")) or None

    def size(self, key: str) -> int | None:
        head = self._head(key)
        return None if head is None else int(head["ContentLength"])

    def copy(self, source: str, target: str) -> bool:
        if self._head(source) is None:
            return False
        # Server-side: the bytes never pass through this process; the metadata (the checksum) is
        # copied with them.
        origin = {"Bucket": self.bucket, "Key": self.name(source)}
        self._call(self.client.copy, origin, self.bucket, self.name(target), Config=self.transfers)
        return True

    def delete(self, key: str) -> None:
        self._call(self.client.delete_object, Bucket=self.bucket, Key=self.name(key))

    def keys(self, prefix: str) -> list[str]:
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=self.name(prefix)
        )
        strip = len(self.name(""))
        found: list[str] = []
        try:
            for page in pages:
                found += [item["Key"][strip:] for item in page.get("Contents", [])]
        except (BotoCoreError, ClientError) as exc:
            raise StoreUnavailable(f"the artifact store {self.url}: {exc}") from exc
        return found

    def presigned_url(self, key: str, seconds: int) -> str | None:
        params = {"Bucket": self.bucket, "Key": self.name(key)}
        url: str = self.client.generate_presigned_url("get_object", Params=params, ExpiresIn=seconds)
        return url

    def _head(self, key: str) -> Any:
        try:
            return self._call(self.client.head_object, Bucket=self.bucket, Key=self.name(key), key=key)
        except ArtifactMissing:
            return None

    def _call(self, method: Any, *args: Any, key: str | None = None, **kwargs: Any) -> Any:
        """``method`` with the store's errors as the service's: a missing object, or a store that
        cannot be reached or refuses the service."""
        try:
            return method(*args, **kwargs)
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if key is not None and code in MISSING_CODES:
                raise ArtifactMissing(key) from None
            raise StoreUnavailable(f"the artifact store {self.url}: {exc}") from exc
        except BotoCoreError as exc:
            raise StoreUnavailable(f"the artifact store {self.url}: {exc}") from exc


def _bytes_digest(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()
