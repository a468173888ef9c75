"""Where a job's files live under ``ARTIFACTS_DIR``: derived from the job id alone.

Each attempt writes its own model file, and the job's record names the attempt that finished
it, so a stale attempt that wakes up can never replace the model a newer attempt made.
"""

import os
import shutil
from pathlib import Path

CHECKPOINT_MODEL_FILE = "model.keras"
# Beside the model of a checkpoint whose model holds augmentation layers: the same network
# without them, which loads with plain Keras. A job's model must always be such a file.
CHECKPOINT_INFERENCE_MODEL_FILE = "inference.keras"


def dataset_path(artifacts_dir: Path, dataset_id: str) -> Path:
    """The arrays of an uploaded dataset (``x_train``, ``y_train``, ``x_test``, ``y_test``)."""
    return artifacts_dir / "datasets" / f"{dataset_id}.npz"


def job_dir(artifacts_dir: Path, job_id: str) -> Path:
    """The folder of one job's files."""
    return artifacts_dir / job_id


def model_path(artifacts_dir: Path, job_id: str, attempt: int) -> Path:
    """The trained model of one attempt (the best weights when early stopping restored them)."""
    return job_dir(artifacts_dir, job_id) / f"model.attempt-{attempt}.keras"


def checkpoints_dir(artifacts_dir: Path, job_id: str) -> Path:
    """The folder of a job's epoch checkpoints, deleted when the job ends."""
    return job_dir(artifacts_dir, job_id) / "checkpoints"


def checkpoint_dir(artifacts_dir: Path, job_id: str, attempt: int, epoch: int) -> Path:
    """The checkpoint that ``attempt`` wrote at the end of ``epoch``."""
    return checkpoints_dir(artifacts_dir, job_id) / f"attempt-{attempt}-epoch-{epoch:04d}"


def promote_checkpoint(artifacts_dir: Path, job_id: str, attempt: int, epoch: int, into_attempt: int) -> bool:
    """Make the checkpoint of ``epoch`` the model of ``into_attempt`` (for a job that ended
    without its worker); whether that checkpoint was there.

    A file copy, so any process may do it without loading Keras: the checkpoint's model without
    its augmentation layers when it has them, else the checkpoint's model itself.
    """
    folder = checkpoint_dir(artifacts_dir, job_id, attempt, epoch)
    source = folder / CHECKPOINT_INFERENCE_MODEL_FILE
    if not source.is_file():
        source = folder / CHECKPOINT_MODEL_FILE
    if not source.is_file():
        return False
    target = model_path(artifacts_dir, job_id, into_attempt)
    partial = target.with_name(f".{target.name}.{os.getpid()}.partial")
    shutil.copyfile(source, partial)
    partial.replace(target)
    return True


def clear_checkpoints(artifacts_dir: Path, job_id: str) -> None:
    """Delete a finished job's checkpoints; its model stays."""
    shutil.rmtree(checkpoints_dir(artifacts_dir, job_id), ignore_errors=True)
