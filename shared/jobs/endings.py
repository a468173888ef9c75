"""What follows a job's ending, written once: a job that ended without its worker gets its last
checkpoint as its model, its checkpoints are deleted (its model stays), its study's next held
jobs are sent (a search's trial is told to Optuna, and more trials asked for), and its study
ends with its last job.

Every transition that ends a job (a worker's result, a cancel, the reaper's verdict on a lost
worker) also enters the job in the endings outbox, in the same transaction
(``shared.jobs.changes.ending``). Whoever settles an ending holds it while it does the
follow-ups and takes it off the outbox only once they are done, so an ending whose process
died in between is settled again when its hold ends; the follow-ups may run twice, and do no
harm when they do. Every worker settles the outbox after each of its tasks and with each
heartbeat.
"""

import logging
from typing import TYPE_CHECKING

from shared.errors import JobNotFound
from shared.logs import job_fields
from shared.models.jobs import CheckpointRef, JobRecord
from shared.storage.base import ArtifactStore
from shared.storage.layout import (
    CHECKPOINT_INFERENCE_MODEL_FILE,
    CHECKPOINT_MODEL_FILE,
    checkpoint_key,
    checkpoints_prefix,
    model_key,
)
from shared.studies.store import StudyStore

if TYPE_CHECKING:  # a search is followed up where Optuna is loaded: the workers
    from shared.studies.search import Search

log = logging.getLogger(__name__)

HOLD_SECONDS = 60.0
"""How long an ending is held by the process settling it before another may take it."""
BATCH = 100


class Endings:
    """Settles ended jobs: ``settle`` does the follow-ups of every ending that is due."""

    def __init__(
        self,
        studies: StudyStore,
        artifacts: ArtifactStore,
        search: "Search | None" = None,
        hold_seconds: float = HOLD_SECONDS,
    ) -> None:
        self.studies, self.store, self.artifacts, self.search = studies, studies.store, artifacts, search
        self.hold_seconds = hold_seconds

    def settle(self) -> list[str]:
        """Follow up every due ending; the ids of the jobs settled."""
        settled: list[str] = []
        while taken := self.store.claim_endings(BATCH, self.hold_seconds):
            for job_id in taken:
                try:
                    self.follow_up(job_id)
                except Exception as exc:  # held until its hold ends, then tried again
                    log.warning("job %s: follow-ups failed: %s", job_id, exc, extra=job_fields(job_id))
                    continue
                self.store.ending_settled(job_id)
                settled.append(job_id)
            if len(taken) < BATCH:
                break
        return settled

    def move_on_waiting(self) -> list[str]:
        """The reapers' safety net under the endings: studies that only they can move on go on."""
        return self.studies.move_on_waiting(self.search.advance if self.search is not None else None)

    def follow_up(self, job_id: str) -> None:
        """What follows the ending of job ``job_id``."""
        try:
            job = self.store.get(job_id)
        except JobNotFound:  # deleted since: nothing of it is left to follow up but its files
            self.artifacts.delete_prefix(checkpoints_prefix(job_id))
            return
        if job.model_checkpoint is not None and not job.has_model:
            self.promote(job, job.model_checkpoint)
        self.artifacts.delete_prefix(checkpoints_prefix(job_id))
        if job.study is not None:
            if job.study.trial is not None and self.search is not None:
                self.search.follow_up(job)
            else:
                self.studies.let_go_on(job.study.id)
            self.studies.end_if_done(job.study.id)

    def promote(self, job: JobRecord, checkpoint: CheckpointRef) -> None:
        """Make the checkpoint the model of the job's final attempt. Only the transition that ended
        the job names the checkpoint, so only the process that won the job's settling starts
        this; a copy within the store, safe to do twice."""
        target = model_key(job.id, job.attempt)
        for file in (CHECKPOINT_INFERENCE_MODEL_FILE, CHECKPOINT_MODEL_FILE):
            source = checkpoint_key(job.id, checkpoint.attempt, checkpoint.epoch, file)
            if self.artifacts.copy(source, target):
                self.store.mark_model(job.id)
                return
        log.warning(
            "job %s: the checkpoint of epoch %d is missing; the job has no model",
            job.id,
            checkpoint.epoch,
            extra=job_fields(job.id),
        )
