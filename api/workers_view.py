"""Live workers as the API shows them: a job id only to the tenant that owns the job."""

from datetime import UTC, datetime

from api.schemas import WorkerView
from shared.errors import JobNotFound
from shared.jobs.store import JobStore
from shared.ops.registry import WorkerInfo


def worker_view(info: WorkerInfo, job_id: str | None) -> WorkerView:
    """``info`` showing ``job_id`` as its current job (None hides it)."""
    return WorkerView(
        name=info.name,
        host=info.host,
        pid=info.pid,
        queues=info.queues,
        backend=info.backend,
        device=info.device,
        status="busy" if info.current_job else "idle",
        current_job=job_id,
        started_at=datetime.fromtimestamp(info.started_at, UTC),
        seen_at=datetime.fromtimestamp(info.seen_at, UTC),
    )


def visible_job(store: JobStore, job_id: str | None, tenant: str | None) -> str | None:
    """``job_id`` when it is ``tenant``'s job; None otherwise (another tenant's, gone, or no tenant)."""
    if job_id is None or tenant is None:
        return None
    try:
        return job_id if store.get(job_id).tenant == tenant else None
    except JobNotFound:
        return None


def worker_views(workers: list[WorkerInfo], store: JobStore, tenant: str | None) -> list[WorkerView]:
    """The workers by name, each with its current job when ``tenant`` owns it."""
    ordered = sorted(workers, key=lambda info: info.name)
    return [worker_view(info, visible_job(store, info.current_job, tenant)) for info in ordered]
