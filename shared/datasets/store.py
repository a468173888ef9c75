"""Uploaded datasets: their arrays in the artifact store (where every worker reads them),
their description in Redis, the check that a spec names one its tenant owns, and their
retention: one that no submission has named for the retention time, and that no queued or
running job uses, is deleted."""

import io
import time
from dataclasses import dataclass

import numpy as np
from redis.client import Pipeline

from shared.datasets.description import columns, describe
from shared.datasets.formats import UploadedArrays
from shared.errors import Conflict, FieldError, JobNotFound, SpecInvalid
from shared.jobs.changes import epoch_ms
from shared.jobs.creation import ACTIVE_OR_QUEUED
from shared.jobs.store import JobStore
from shared.models.datasets import BUILTIN_SHAPES, DatasetInfo, DatasetShape
from shared.models.jobs import JobRecord, new_job_id, utc_now
from shared.models.spec import JobSpec
from shared.redis.codec import strings
from shared.redis.watch import watched
from shared.storage.base import ArtifactStore
from shared.storage.layout import dataset_key


@dataclass(frozen=True)
class DatasetQuota:
    """What one tenant's uploaded datasets may hold: how many, and how many stored bytes."""

    datasets: int
    stored_bytes: int


class DatasetStore:
    """Uploaded datasets of one store's Redis and one artifacts folder."""

    def __init__(self, store: JobStore, artifacts: ArtifactStore, quota: DatasetQuota | None = None) -> None:
        self.store, self.keys, self.artifacts = store, store.keys, artifacts
        self.quota = quota

    def check_quota(self, tenant: str, adding_bytes: int) -> None:
        """``Conflict`` when one more dataset of ``adding_bytes`` would take the tenant past its
        quota of datasets or of stored bytes."""
        if self.quota is None:
            return
        held = self.for_tenant(tenant)
        stored = sum(info.stored_bytes for info in held) + adding_bytes
        if len(held) + 1 > self.quota.datasets:
            raise Conflict(
                f"the tenant holds {len(held)} datasets, its quota of {self.quota.datasets}: delete one first"
            )
        if stored > self.quota.stored_bytes:
            raise Conflict(
                f"with this upload the tenant's datasets would take {stored} bytes, over its quota of "
                f"{self.quota.stored_bytes}: delete one first"
            )

    def save(self, tenant: str, name: str | None, arrays: UploadedArrays) -> DatasetInfo:
        """Write the arrays, then describe them in Redis; the id is new."""
        shape = describe(arrays)
        info = DatasetInfo(
            **shape.model_dump(),
            id=new_job_id(),
            tenant=tenant,
            name=name,
            train_samples=len(arrays.x_train),
            test_samples=len(arrays.x_test),
            test_held_out=arrays.test_held_out,
            columns=columns(arrays),
            created_at=utc_now(),
        )
        buffer = io.BytesIO()
        np.savez_compressed(
            buffer, x_train=arrays.x_train, y_train=arrays.y_train, x_test=arrays.x_test, y_test=arrays.y_test
        )
        self.check_quota(tenant, buffer.tell())
        self.artifacts.put_bytes(dataset_key(info.id), buffer.getvalue())
        info.stored_bytes = buffer.tell()
        pipe = self.store.redis.pipeline(transaction=True)
        pipe.set(self.keys.dataset(info.id), info.model_dump_json())
        pipe.zadd(self.keys.datasets_index(tenant), {info.id: 0})
        pipe.zadd(self.keys.datasets_used(), {info.id: epoch_ms(time.time())})
        pipe.execute()
        return info

    def get(self, dataset_id: str, tenant: str) -> DatasetInfo:
        """The tenant's dataset; ``JobNotFound``-like 404 otherwise."""
        raw = self.store.redis.get(self.keys.dataset(dataset_id))
        info = DatasetInfo.model_validate_json(str(raw)) if raw else None
        if info is None or info.tenant != tenant:
            raise DatasetNotFound(dataset_id)
        return info

    def for_tenant(self, tenant: str) -> list[DatasetInfo]:
        """The tenant's datasets, newest first."""
        ids = [str(i) for i in self.store.redis.zrevrange(self.keys.datasets_index(tenant), 0, -1)]
        return [
            self.get(dataset_id, tenant)
            for dataset_id in ids
            if self.store.redis.exists(self.keys.dataset(dataset_id))
        ]

    def delete(self, dataset_id: str, tenant: str) -> None:
        """Delete the dataset, unless a queued or running job of the tenant uses it (``Conflict``)."""
        self.get(dataset_id, tenant)
        users = [job.id for job in self._active_jobs(tenant) if job.spec.dataset.name == dataset_id]
        if users:
            raise Conflict(f"dataset {dataset_id} is used by queued or running jobs: {', '.join(users[:5])}")
        self._forget(self.store.redis.pipeline(transaction=True), dataset_id, tenant)

    def _forget(self, pipe: Pipeline, dataset_id: str, tenant: str) -> None:
        """On ``pipe`` (a transaction, or a watching pipeline): delete the dataset's description
        and its entries, then its file."""
        pipe.multi()
        pipe.delete(self.keys.dataset(dataset_id))
        pipe.zrem(self.keys.datasets_index(tenant), dataset_id)
        pipe.zrem(self.keys.datasets_used(), dataset_id)
        pipe.execute()
        self.artifacts.delete(dataset_key(dataset_id))

    def unused_since(self, cutoff: float, limit: int = 100) -> list[str]:
        """Ids of datasets last used (uploaded or named by a submission) before ``cutoff``."""
        return strings(
            self.store.redis.zrangebyscore(
                self.keys.datasets_used(), "-inf", epoch_ms(cutoff), start=0, num=limit
            )
        )

    def expire_unused(self, dataset_id: str, cutoff: float) -> bool:
        """Delete the dataset if it is still unused since ``cutoff`` and no queued or running job
        names it; whether it was deleted. Watched, so that a submission naming it meanwhile keeps
        it."""
        used = self.keys.datasets_used()

        def step(pipe: Pipeline) -> bool:
            last_use = pipe.zscore(used, dataset_id)
            raw = pipe.get(self.keys.dataset(dataset_id))
            if last_use is None or float(last_use) > epoch_ms(cutoff):
                pipe.unwatch()
                return False
            if raw is None:  # its description is gone already: only its entry and file are left
                self._forget(pipe, dataset_id, "")
                return True
            tenant = DatasetInfo.model_validate_json(str(raw)).tenant
            if any(job.spec.dataset.name == dataset_id for job in self._active_jobs(tenant)):
                pipe.unwatch()
                return False
            self._forget(pipe, dataset_id, tenant)
            return True

        return watched(self.store.redis, [used, self.keys.dataset(dataset_id)], step)

    def _active_jobs(self, tenant: str) -> list[JobRecord]:
        ids = [
            job_id
            for status in ACTIVE_OR_QUEUED
            for job_id in self.store.ids_in(self.keys.status_index(tenant, status.value))
        ]
        return [job for job in self.store.get_many(ids) if job is not None]

    def shape_of(self, spec: JobSpec, tenant: str) -> DatasetShape:
        """The shape of the spec's dataset: a built-in, or an upload of the tenant (else
        ``SpecInvalid`` on ``dataset.name``)."""
        name = spec.dataset.name
        if name in BUILTIN_SHAPES:
            return BUILTIN_SHAPES[name]
        try:
            found = self.get(name, tenant)
            # Used now, before the job is stored: a retention sweep meanwhile finds it used.
            self.store.redis.zadd(self.keys.datasets_used(), {name: epoch_ms(time.time())}, xx=True)
            return found
        except DatasetNotFound:
            raise SpecInvalid(
                [FieldError("dataset.name", f"no uploaded dataset with id {name!r}", "not_found")]
            ) from None


class DatasetNotFound(JobNotFound):
    """No dataset of this tenant has this id."""

    def __init__(self, dataset_id: str) -> None:
        super().__init__(dataset_id)
        self.args = (f"no dataset with id {dataset_id!r}",)
