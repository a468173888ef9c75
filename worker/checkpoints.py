"""Epoch checkpoints: everything needed to continue a job exactly where an epoch ended, on any
host.

A checkpoint is a few objects in the artifact store (the model with its optimizer state, the
model without augmentation, the callbacks' state, the best weights), each visible only whole.
They are all stored before their epoch's record; the record, appended in Redis under the
attempt's fence, is what commits them. A resumed attempt reads the checkpoint named by the last
record (its attempt and epoch), through its worker's cache, so records and checkpoints can
never disagree.
"""

import json
import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import numpy as np

from shared.errors import TrainingError
from shared.storage.base import ArtifactMissing, ArtifactStore
from shared.storage.layout import (
    CHECKPOINT_BEST_WEIGHTS_FILE,
    CHECKPOINT_INFERENCE_MODEL_FILE,
    CHECKPOINT_MODEL_FILE,
    CHECKPOINT_STATE_FILE,
    checkpoint_epoch,
    checkpoint_key,
    checkpoints_prefix,
)
from worker.augmentation import has_augmentation, without_augmentation
from worker.cache import ArtifactCache

log = logging.getLogger(__name__)


@dataclass
class Checkpoint:
    """A model (with its optimizer state), the callbacks' state, and the best weights so far."""

    model: keras.Model
    state: dict[str, Any]
    best_weights: list[Any] | None


def save_model(model: keras.Model, artifacts: ArtifactStore, key: str) -> None:
    """Store the model a user downloads, without its augmentation layer (plain Keras loads it);
    a reader never sees a half-written one."""
    with tempfile.TemporaryDirectory(prefix="kjobs-model-") as folder:
        path = Path(folder) / "model.keras"
        without_augmentation(model).save(path)
        artifacts.put_file(key, path)


class Checkpointer:
    """Writes and prunes the checkpoints of one attempt of a job."""

    def __init__(self, artifacts: ArtifactStore, job_id: str, attempt: int) -> None:
        self.artifacts, self.job_id, self.attempt = artifacts, job_id, attempt

    def save(self, epoch: int, checkpoint: Checkpoint) -> None:
        """Store the checkpoint of ``epoch``: written locally, then each file into the store."""
        with tempfile.TemporaryDirectory(prefix="kjobs-checkpoint-") as folder:
            written = Path(folder)
            checkpoint.model.save(written / CHECKPOINT_MODEL_FILE)
            if has_augmentation(checkpoint.model):
                # What a job that ends without its worker serves as its model: a copy within the
                # store, made where Keras may not be loaded (a prefork pool's parent runs the reaper).
                without_augmentation(checkpoint.model).save(written / CHECKPOINT_INFERENCE_MODEL_FILE)
            (written / CHECKPOINT_STATE_FILE).write_text(json.dumps(checkpoint.state))
            if checkpoint.best_weights is not None:
                np.savez(written / CHECKPOINT_BEST_WEIGHTS_FILE, *checkpoint.best_weights)
            for path in written.iterdir():
                self.artifacts.put_file(checkpoint_key(self.job_id, self.attempt, epoch, path.name), path)

    def prune(self, committed_epoch: int) -> None:
        """Delete the checkpoints older than the last two committed ones.

        The one before the last is kept in case Redis loses its last second of writes (a crash
        with ``appendfsync everysec``), and with them the last record. Later ones are kept: they
        may belong to a newer attempt that took this job over.
        """
        for key in self.artifacts.keys(checkpoints_prefix(self.job_id)):
            if checkpoint_epoch(key) < committed_epoch - 1:
                self.artifacts.delete(key)


def load_checkpoint(cache: ArtifactCache, job_id: str, attempt: int, epoch: int) -> Checkpoint:
    """The checkpoint ``attempt`` committed with the record of ``epoch``."""

    def local(file: str) -> Path | None:
        try:
            return cache.path(checkpoint_key(job_id, attempt, epoch, file))
        except ArtifactMissing:
            return None

    model_file, state_file = local(CHECKPOINT_MODEL_FILE), local(CHECKPOINT_STATE_FILE)
    if model_file is None or state_file is None:
        raise TrainingError(f"the checkpoint of epoch {epoch} is missing from the artifacts; cannot resume")
    model = keras.models.load_model(model_file, safe_mode=True)  # never run code from a file
    state = json.loads(state_file.read_text())
    best_weights = None
    if (weights_file := local(CHECKPOINT_BEST_WEIGHTS_FILE)) is not None:
        with np.load(weights_file) as stored:
            best_weights = [stored[f"arr_{index}"] for index in range(len(stored.files))]
    return Checkpoint(model, state, best_weights)
