"""The job list: pages read from sorted-set indexes, never from a scan of the keyspace."""

from collections.abc import Mapping, Sequence

from shared.jobs.store import JobStore
from shared.models.jobs import JobRecord, JobStatus

_SCAN_FACTOR = 20  # ids read per requested item before a filtered page returns short


def list_jobs(
    store: JobStore,
    tenant: str,
    *,
    statuses: Sequence[JobStatus] = (),
    tags: Mapping[str, str] | None = None,
    limit: int = 20,
    cursor: str | None = None,
) -> tuple[list[JobRecord], str | None]:
    """A page of the tenant's jobs, newest first, and the cursor of the next page (or None).

    Reads one index (a tag's, a status's, or all jobs') from the cursor on and filters the
    rest in memory; a page may come back short after a bounded scan, with a cursor to go on.
    """
    tags = dict(tags or {})
    index = _index(store, tenant, statuses, tags)
    wanted, found, scanned = set(statuses), list[JobRecord](), 0
    last = cursor
    while len(found) < limit and scanned < limit * _SCAN_FACTOR:
        ids = store.ids_before(index, last, limit)
        if not ids:
            return found, None
        scanned += len(ids)
        for job_id, record in zip(ids, store.get_many(ids), strict=True):
            last = job_id
            if (
                record
                and (not wanted or record.status in wanted)
                and tags.items() <= record.spec.tags.items()
            ):
                found.append(record)
                if len(found) == limit:
                    break
    return found, last


def _index(store: JobStore, tenant: str, statuses: Sequence[JobStatus], tags: Mapping[str, str]) -> str:
    if tags:
        key, value = next(iter(tags.items()))
        return store.keys.tag_index(tenant, key, value)
    if len(statuses) == 1:
        return store.keys.status_index(tenant, statuses[0].value)
    return store.keys.jobs_index(tenant)
