"""A client's cancel of a job, decided against the job's current status."""

from shared.errors import Conflict, InvalidTransition
from shared.jobs.store import JobStore
from shared.models.jobs import JobRecord, JobStatus, StopReason

_CANCEL_STEPS = {
    JobStatus.QUEUED: (JobStatus.CANCELLED, "cancelled while queued"),
    JobStatus.RUNNING: (JobStatus.CANCELLING, "cancel requested; stops at the next batch end"),
}


def cancel(store: JobStore, job_id: str) -> JobRecord:
    """Cancel a job: a queued one at once, a running one at its next batch end.

    Cancelling twice is harmless; a job that already succeeded or failed is a ``Conflict``.
    """
    while True:
        record = store.get(job_id)
        if record.status in (JobStatus.CANCELLING, JobStatus.CANCELLED):
            return record
        if record.status.is_terminal():
            raise Conflict(f"job {job_id} already ended as {record.status.value}; nothing to cancel")
        target, reason = _CANCEL_STEPS[record.status]
        fields = {"stop_reason": StopReason.CANCELLED.value} if target is JobStatus.CANCELLED else {}
        try:
            return store.change_status(job_id, target, reason=reason, fields=fields)
        except InvalidTransition:
            continue  # the status moved between our read and write: decide again
