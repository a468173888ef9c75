"""Where a job's files live under ``ARTIFACTS_DIR``: derived from the job id alone."""

from pathlib import Path

MODEL_FILE = "model.keras"


def job_dir(artifacts_dir: Path, job_id: str) -> Path:
    """The folder of one job's files."""
    return artifacts_dir / job_id


def model_path(artifacts_dir: Path, job_id: str) -> Path:
    """The trained model of a job (the best weights when early stopping restored them)."""
    return job_dir(artifacts_dir, job_id) / MODEL_FILE
