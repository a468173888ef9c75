"""The retention sweep that every worker runs with its heartbeat: what has been kept for
``RETENTION_SECONDS`` goes, with its files.

A finished job goes that long after it ended, a study that long after its last job ended, and
an uploaded dataset once no submission has named it for that long (and no queued or running
job uses it). Any worker may sweep: each deletion is one transaction, and a thing swept twice
is deleted once.
"""

import logging
import time

from shared.datasets.store import DatasetStore
from shared.logs import job_fields
from shared.settings import Settings
from shared.storage.layout import job_prefix
from shared.studies.store import StudyStore

log = logging.getLogger(__name__)


class RetentionSweep:
    """Deletes finished jobs, ended studies and unused datasets past the retention time."""

    def __init__(self, studies: StudyStore, datasets: DatasetStore, settings: Settings) -> None:
        self.studies, self.store, self.datasets, self.settings = studies, studies.store, datasets, settings

    def run_once(self) -> None:
        """One pass over each kind of thing past its retention."""
        cutoff = time.time() - self.settings.retention_seconds
        for job_id in self.store.finished_before(cutoff):
            self.datasets.artifacts.delete_prefix(job_prefix(job_id))
            self.store.purge(job_id)
            log.info("job %s: deleted after the retention time", job_id, extra=job_fields(job_id))
        for study_id in self.studies.ended_before(cutoff):
            self.studies.purge(study_id)
            log.info("study %s: deleted after the retention time", study_id)
        for dataset_id in self.datasets.unused_since(cutoff):
            if self.datasets.expire_unused(dataset_id, cutoff):
                log.info("dataset %s: deleted, unused for the retention time", dataset_id)
