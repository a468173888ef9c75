"""Stored studies, and the dispatch that keeps at most ``max_parallel`` of a study's jobs queued
or running: the rest wait in the study's pending list, and each job that ends lets the next go
(``shared.jobs.endings``). The job that ends last ends its study, which is deleted the
retention time after that."""

import contextlib
import json
import logging
import time
from collections.abc import Callable, Sequence

from redis.client import Pipeline

from shared.errors import Conflict, JobNotFound
from shared.jobs.cancel import cancel
from shared.jobs.changes import EXPIRY_MARGIN_SECONDS, epoch_ms
from shared.jobs.dispatch import Dispatch
from shared.models.jobs import JobRecord, JobStatus
from shared.models.studies import StudyRecord
from shared.redis.clock import redis_seconds
from shared.redis.codec import strings
from shared.redis.scripts import CLAIM_DUE
from shared.redis.watch import watched
from shared.redis.writes import Writes

log = logging.getLogger(__name__)


class StudyStore:
    """Studies of one store's Redis: create, read, list, and dispatch their jobs."""

    def __init__(self, dispatch: Dispatch) -> None:
        self.dispatch, self.store = dispatch, dispatch.store
        self.keys, self.redis = self.store.keys, self.store.redis

    def create(self, study: StudyRecord, jobs: Sequence[JobRecord], max_active: int | None) -> None:
        """Store the study, its jobs (all queued) and the pending list of those its cap holds,
        all at once and only if the tenant stays within ``max_active`` active jobs; the jobs it
        does not hold wait for their turn from then (``shared.scheduling``)."""
        held = [job.id for job in jobs[study.max_parallel :]] if study.max_parallel else []
        writes = Writes()
        writes.set(self.keys.study(study.id), study.model_dump_json())
        writes.zadd(self.keys.studies_index(study.tenant), {study.id: 0})
        if held:
            writes.rpush(self.keys.study_pending(study.id), *held)
            writes.zadd_from_now(self.keys.studies_waiting(), study.id, self.store.dispatch_seconds)
        self.store.create_together(study.tenant, jobs, writes, max_active, held=held)

    def save(self, study: StudyRecord, new: bool = False) -> None:
        """Write the study's record (a search's, as it grows and ends); a ``new`` one is listed."""
        pipe = self.redis.pipeline(transaction=True)
        pipe.set(self.keys.study(study.id), study.model_dump_json())
        if new:
            pipe.zadd(self.keys.studies_index(study.tenant), {study.id: 0})
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

    def cancel(self, study: StudyRecord) -> None:
        """Cancel every job of the study that has not ended; held jobs are never sent."""
        self.redis.delete(self.keys.study_pending(study.id))
        for job in study.jobs:
            with contextlib.suppress(Conflict, JobNotFound):  # it had ended, or expired since
                cancel(self.store, job.job_id)

    def let_go_on(self, study_id: str) -> list[str]:
        """Send held jobs while fewer than ``max_parallel`` of the study's jobs are in flight;
        the ids sent."""
        study = self.get(study_id)
        if study is None or not study.max_parallel:
            return []
        sent: list[str] = []
        while (job_id := self._take_next(study)) is not None:
            (record,) = self.store.get_many([job_id])
            if record is not None and record.status is JobStatus.QUEUED:
                self.dispatch.send(record)
                sent.append(job_id)
                log.info("study %s: job %s sent", study_id, job_id)
        return sent

    def end_if_done(self, study_id: str) -> bool:
        """Record the study as ended (kept for the retention time from now) when it holds no
        job back and every one of its jobs has ended; whether it has ended."""
        study = self.get(study_id)
        if study is None or self.redis.exists(self.keys.study_pending(study_id)):
            return False
        if study.search is not None and study.end_reason is None:  # it may ask for more trials
            return False
        statuses = self.store.get_many(job.job_id for job in study.jobs)
        if any(job is not None and not job.status.is_terminal() for job in statuses):
            return False
        finished = self.keys.studies_finished()
        pipe = self.redis.pipeline(transaction=True)
        pipe.zadd(finished, {study_id: epoch_ms(time.time())}, nx=True)
        # The safety net, should no sweep delete it: the record goes a day after its retention.
        pipe.expire(self.keys.study(study_id), self.store.retention_seconds + EXPIRY_MARGIN_SECONDS)
        pipe.execute()
        return True

    def ended_before(self, cutoff: float, limit: int = 100) -> list[str]:
        """Ids of studies that ended before ``cutoff`` (a Unix time), oldest first."""
        return strings(
            self.redis.zrangebyscore(
                self.keys.studies_finished(), "-inf", epoch_ms(cutoff), start=0, num=limit
            )
        )

    def purge(self, study_id: str) -> None:
        """Delete a study: its record, its held jobs' list and its entries in every index (its
        jobs go with their own retention)."""
        study = self.get(study_id)
        pipe = self.redis.pipeline(transaction=True)
        pipe.delete(self.keys.study(study_id), self.keys.study_pending(study_id))
        for index in (self.keys.studies_finished(), self.keys.studies_waiting()):
            pipe.zrem(index, study_id)
        if study is not None:
            pipe.zrem(self.keys.studies_index(study.tenant), study_id)
        pipe.execute()

    def wait(self, study_id: str) -> None:
        """Have the reapers make sure, once a dispatch deadline, that the study goes on (a search
        that the tenant's quota stopped with nothing in flight, say: no ending will move it)."""
        deadline = redis_seconds(self.redis) + self.store.dispatch_seconds
        self.redis.zadd(self.keys.studies_waiting(), {study_id: epoch_ms(deadline)}, nx=True)

    def move_on_waiting(self, advance: Callable[[str], list[str]] | None = None) -> list[str]:
        """Let every waiting study go on whose turn to be checked has come (each is checked once
        a dispatch deadline), whatever became of the endings that should have let it go on: one
        with held jobs lets them go, a search asks for trials (with ``advance``). A study that
        needs it no more leaves the waiting set. The ids of the jobs sent."""
        waiting = self.keys.studies_waiting()
        hold_ms = int(self.store.dispatch_seconds * 1000)
        sent: list[str] = []
        for study_id in strings(CLAIM_DUE.run(self.redis, [waiting], [100, hold_ms])):
            study = self.get(study_id)
            if study is not None and study.search is not None and advance is not None:
                sent += advance(study_id)
            else:
                sent += self.let_go_on(study_id)
            if not self._still_waiting(self.get(study_id)):
                self.redis.zrem(waiting, study_id)
        return sent

    def _still_waiting(self, study: StudyRecord | None) -> bool:
        """Whether only the reapers can move the study on: a search that has not ended and has
        nothing in flight, or a study with held jobs."""
        if study is None:
            return False
        if study.search is None:
            return bool(self.redis.exists(self.keys.study_pending(study.id)))
        jobs = self.store.get_many(job.job_id for job in study.jobs)
        return study.end_reason is None and all(job is None or job.status.is_terminal() for job in jobs)

    def _take_next(self, study: StudyRecord) -> str | None:
        pending = self.keys.study_pending(study.id)

        def step(pipe: Pipeline) -> str | None:
            held = strings(pipe.lrange(pending, 0, -1))
            in_flight = sum(
                1 for job in study.jobs if job.job_id not in held and self._active(pipe, job.job_id)
            )
            if not held or in_flight >= (study.max_parallel or len(study.jobs)):
                pipe.unwatch()
                return None
            # Let go with its dispatch deadline, so that a process that dies before sending it
            # leaves it to a reaper rather than stranded outside the pending list.
            deadline = redis_seconds(pipe) + self.store.dispatch_seconds
            pipe.multi()
            pipe.lpop(pending)
            pipe.zadd(self.keys.leases(), {held[0]: epoch_ms(deadline)})
            pipe.execute()
            return held[0]

        return watched(self.redis, [pending, *(self.keys.job(job.job_id) for job in study.jobs)], step)

    def _active(self, pipe: Pipeline, job_id: str) -> bool:
        status = pipe.hget(self.keys.job(job_id), "status")
        return status is not None and not JobStatus(json.loads(str(status))).is_terminal()
