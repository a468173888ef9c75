"""Stored studies, and the dispatch that keeps at most ``max_parallel`` of a study's jobs queued
or running: the rest wait in the study's pending list, and each job that ends lets the next go."""

import json
import logging

from celery import Celery
from redis.client import Pipeline
from redis.exceptions import WatchError

from shared.jobs.store import JobStore
from shared.models.jobs import JobRecord, JobStatus
from shared.models.spec import QueueName
from shared.models.studies import StudyRecord
from shared.queue import send_training
from shared.redis.codec import strings

log = logging.getLogger(__name__)


class StudyStore:
    """Studies of one store's Redis: create, read, list, and dispatch their jobs."""

    def __init__(self, store: JobStore, default_queue: QueueName) -> None:
        self.store, self.keys, self.redis = store, store.keys, store.redis
        self.default_queue = default_queue

    def create(self, study: StudyRecord, jobs: list[JobRecord]) -> None:
        """Store the study, its jobs (all queued) and the pending list of those not yet sent."""
        for job in jobs:
            self.store.create(job)
        pipe = self.redis.pipeline(transaction=True)
        pipe.set(self.keys.study(study.id), study.model_dump_json())
        pipe.zadd(self.keys.studies_index(study.tenant), {study.id: 0})
        pipe.delete(self.keys.study_pending(study.id))
        held = [job.id for job in jobs[study.max_parallel :]] if study.max_parallel else []
        if held:
            pipe.rpush(self.keys.study_pending(study.id), *held)
        pipe.execute()

    def get(self, study_id: str) -> StudyRecord | None:
        """The study, or None."""
        raw = self.redis.get(self.keys.study(study_id))
        return StudyRecord.model_validate_json(str(raw)) if raw else None

    def page(self, tenant: str, limit: int, cursor: str | None) -> tuple[list[StudyRecord], str | None]:
        """A page of the tenant's studies, newest first, and the next page's cursor."""
        upper = f"({cursor}" if cursor else "+"
        ids = strings(
            self.redis.zrevrangebylex(self.keys.studies_index(tenant), upper, "-", start=0, num=limit + 1)
        )
        studies = [study for study in (self.get(study_id) for study_id in ids[:limit]) if study]
        return studies, (ids[limit - 1] if len(ids) > limit else None)

    def pending(self, study_id: str) -> list[str]:
        """Ids of the study's jobs held back by its parallelism cap."""
        return strings(self.redis.lrange(self.keys.study_pending(study_id), 0, -1))

    def clear_pending(self, study_id: str) -> None:
        """Forget the held jobs (the study is cancelled)."""
        self.redis.delete(self.keys.study_pending(study_id))

    def dispatch(self, celery: Celery, study: StudyRecord) -> list[str]:
        """Send held jobs while fewer than ``max_parallel`` of the study's jobs are in flight."""
        if not study.max_parallel:
            return []
        sent: list[str] = []
        while (job_id := self._take_next(study)) is not None:
            record = self.store.get(job_id)
            if record.status is JobStatus.QUEUED:
                send_training(celery, job_id, record.spec.resources.queue or self.default_queue)
                sent.append(job_id)
        return sent

    def _take_next(self, study: StudyRecord) -> str | None:
        pending = self.keys.study_pending(study.id)
        with self.redis.pipeline(transaction=True) as pipe:
            while True:
                try:
                    pipe.watch(pending, *(self.keys.job(job.job_id) for job in study.jobs))  # type: ignore[no-untyped-call]
                    held = set(strings(pipe.lrange(pending, 0, -1)))
                    in_flight = sum(
                        1 for job in study.jobs if job.job_id not in held and self._active(pipe, job.job_id)
                    )
                    if not held or in_flight >= (study.max_parallel or len(study.jobs)):
                        pipe.unwatch()
                        return None
                    pipe.multi()
                    pipe.lpop(pending)
                    (next_id,) = pipe.execute()
                    return str(next_id)
                except WatchError:
                    continue

    def _active(self, pipe: Pipeline, job_id: str) -> bool:
        status = pipe.hget(self.keys.job(job_id), "status")
        return status is not None and not JobStatus(json.loads(str(status))).is_terminal()


def dispatch_study(studies: StudyStore, celery: Celery, study_id: str) -> None:
    """Let the study's next held jobs go, now that one of its jobs has ended."""
    study = studies.get(study_id)
    if study is not None:
        for job_id in studies.dispatch(celery, study):
            log.info("study %s: job %s sent", study_id, job_id)
