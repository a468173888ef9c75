"""Finished jobs with their epoch records written straight into Redis, in pipelines.

A job goes through the service's own key schema and record models, exactly as a worker would
have left it (succeeded, three transitions, N records), without training anything. Far faster
than ``JobStore.append_epoch``, whose per-record transaction is what a worker needs, not a
benchmark that wants a million records in a minute.
"""

from datetime import datetime, timedelta

from shared.jobs import changes
from shared.jobs.store import JobStore
from shared.models.jobs import (
    EpochRecord,
    JobRecord,
    JobResult,
    JobStatus,
    Progress,
    Transition,
    new_job_id,
    utc_now,
)
from shared.models.spec import JobSpec

JOBS_PER_PIPELINE = 50


def epoch_records(epochs: int, started: datetime) -> list[EpochRecord]:
    """One plausible record per epoch, eight seconds apart."""
    return [
        EpochRecord(
            epoch=epoch,
            loss=1.0 / epoch,
            accuracy=1.0 - 0.5 / epoch,
            val_loss=1.1 / epoch,
            val_accuracy=1.0 - 0.6 / epoch,
            data_loss=1.0 / epoch,
            val_data_loss=1.1 / epoch,
            regularization_penalty=0.0,
            generalization_gap=0.1 / epoch,
            learning_rate=0.001,
            epoch_seconds=8.123456,
            samples_per_second=5170.5,
            attempt=1,
            at=started + timedelta(seconds=8 * epoch),
        )
        for epoch in range(1, epochs + 1)
    ]


def finished_job(tenant: str, epochs: int, started: datetime) -> JobRecord:
    """A job of the baseline network that succeeded after ``epochs`` epochs."""
    spec = JobSpec.model_validate({"name": "seeded", "training": {"epochs": epochs}})
    finished = started + timedelta(seconds=8 * epochs + 1)
    record = JobRecord.new(new_job_id(), tenant, spec, "cpu").model_copy(
        update={
            "status": JobStatus.SUCCEEDED,
            "attempt": 1,
            "progress": Progress(epoch=epochs, epochs=epochs),
            "result": JobResult(test_loss=0.08, test_accuracy=0.975, best_epoch=epochs, stopped_epoch=epochs),
            "has_model": True,
            "started_at": started,
            "finished_at": finished,
            "updated_at": finished,
        }
    )
    record.transitions.extend(
        [
            Transition(status=JobStatus.RUNNING, at=started, attempt=1, reason="started"),
            Transition(status=JobStatus.SUCCEEDED, at=finished, attempt=1, reason="completed"),
        ]
    )
    return record


def seed_jobs(store: JobStore, tenant: str, count: int, epochs: int) -> list[str]:
    """Write ``count`` finished jobs of ``epochs`` records each; their ids, oldest first."""
    ids: list[str] = []
    keys, pipe, started = store.keys, store.redis.pipeline(transaction=False), utc_now()
    # Every job gets the same records: building a million of them would time Pydantic, not Redis.
    epoch_json = [r.model_dump_json() for r in epoch_records(epochs, started)]
    for index in range(count):
        record = finished_job(tenant, epochs, started)
        # The service's own writes of a new job (its record, transitions and indexes), then its epochs.
        changes.creation(keys, record, dispatch_seconds=None).queue_on(pipe)  # finished: no deadline
        pipe.rpush(keys.epochs(record.id), *epoch_json)
        ids.append(record.id)
        if (index + 1) % JOBS_PER_PIPELINE == 0:
            pipe.execute()
    pipe.execute()
    return ids
