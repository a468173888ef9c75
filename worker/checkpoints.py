"""Epoch checkpoints: everything needed to continue a job exactly where an epoch ended.

A checkpoint is a folder written under a temporary name and renamed into place, so it is
whole or absent. It is written before its epoch's record; the record, appended in Redis under
the attempt's fence, is what commits it. A resumed attempt reads the checkpoint named by the
last record (its attempt and epoch), so records and checkpoints can never disagree.
"""

import json
import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import numpy as np

from shared.artifacts import (
    CHECKPOINT_INFERENCE_MODEL_FILE,
    CHECKPOINT_MODEL_FILE,
    checkpoint_dir,
    checkpoints_dir,
)
from shared.errors import TrainingError
from worker.augmentation import has_augmentation, without_augmentation

log = logging.getLogger(__name__)

MODEL_FILE, STATE_FILE, BEST_WEIGHTS_FILE = CHECKPOINT_MODEL_FILE, "state.json", "best-weights.npz"


@dataclass
class Checkpoint:
    """A model (with its optimizer state), the callbacks' state, and the best weights so far."""

    model: keras.Model
    state: dict[str, Any]
    best_weights: list[Any] | None


def save_model(model: keras.Model, path: Path) -> None:
    """Write the model a user downloads, without its augmentation layer (plain Keras loads it),
    so that a reader never sees a half-written file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.stem}.{os.getpid()}.partial.keras")
    without_augmentation(model).save(partial)
    partial.replace(path)


class Checkpointer:
    """Writes and prunes the checkpoints of one attempt of a job."""

    def __init__(self, artifacts_dir: Path, job_id: str, attempt: int) -> None:
        self.artifacts_dir, self.job_id, self.attempt = artifacts_dir, job_id, attempt

    def save(self, epoch: int, checkpoint: Checkpoint) -> None:
        """Write the checkpoint of ``epoch`` atomically (a folder renamed into place)."""
        final = checkpoint_dir(self.artifacts_dir, self.job_id, self.attempt, epoch)
        partial = final.with_name(f".partial-{final.name}-{os.getpid()}")
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
        checkpoint.model.save(partial / MODEL_FILE)
        if has_augmentation(checkpoint.model):
            # What a job that ends without its worker serves as its model: a file copy, made
            # where Keras may not be loaded (a prefork pool's parent runs the reaper).
            without_augmentation(checkpoint.model).save(partial / CHECKPOINT_INFERENCE_MODEL_FILE)
        (partial / STATE_FILE).write_text(json.dumps(checkpoint.state))
        if checkpoint.best_weights is not None:
            np.savez(partial / BEST_WEIGHTS_FILE, *checkpoint.best_weights)
        _sync(partial)
        shutil.rmtree(final, ignore_errors=True)  # a retried epoch of this same attempt
        partial.rename(final)
        _sync_entry(final.parent)

    def prune(self, committed_epoch: int) -> None:
        """Delete the checkpoints older than the last two committed ones.

        The one before the last is kept in case Redis loses its last second of writes (a crash
        with ``appendfsync everysec``), and with them the last record. Later ones are kept: they
        may belong to a newer attempt that took this job over.
        """
        for path in self._existing():
            if _epoch_of(path) < committed_epoch - 1:
                shutil.rmtree(path, ignore_errors=True)

    def _existing(self) -> list[Path]:
        folder = checkpoints_dir(self.artifacts_dir, self.job_id)
        return [path for path in folder.glob("attempt-*-epoch-*") if path.is_dir()] if folder.is_dir() else []


def _sync(folder: Path) -> None:
    # On disk before the record that commits it: a host crash must not leave a record whose
    # checkpoint is half-written.
    for path in folder.iterdir():
        with path.open("rb") as stream:
            os.fsync(stream.fileno())
    _sync_entry(folder)


def _sync_entry(folder: Path) -> None:
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _epoch_of(path: Path) -> int:
    return int(path.name.rsplit("-", 1)[1])


def load_checkpoint(artifacts_dir: Path, job_id: str, attempt: int, epoch: int) -> Checkpoint:
    """The checkpoint ``attempt`` committed with the record of ``epoch``."""
    folder = checkpoint_dir(artifacts_dir, job_id, attempt, epoch)
    if not (folder / MODEL_FILE).is_file():
        raise TrainingError(f"the checkpoint of epoch {epoch} is missing from the artifacts; cannot resume")
    model = keras.models.load_model(folder / MODEL_FILE, safe_mode=True)  # never run code from a file
    state = json.loads((folder / STATE_FILE).read_text())
    best_weights = None
    if (folder / BEST_WEIGHTS_FILE).is_file():
        with np.load(folder / BEST_WEIGHTS_FILE) as stored:
            best_weights = [stored[f"arr_{index}"] for index in range(len(stored.files))]
    return Checkpoint(model, state, best_weights)
