"""The keys of the artifact store, each derived from ids alone (never from a path a client sent).

Each attempt writes its own model, and the job's record names the attempt that finished it, so a
stale attempt that wakes up can never replace the model a newer attempt made. The keys are the
file layout of earlier versions' ``ARTIFACTS_DIR``, so a local store keeps serving what they
wrote.
"""

CHECKPOINT_MODEL_FILE = "model.keras"
CHECKPOINT_INFERENCE_MODEL_FILE = "inference.keras"
"""Beside the model of a checkpoint whose model holds augmentation layers: the same network
without them, which loads with plain Keras. A job's model must always be such a file."""
CHECKPOINT_STATE_FILE = "state.json"
CHECKPOINT_BEST_WEIGHTS_FILE = "best-weights.npz"
CHECKPOINT_FILES = (
    CHECKPOINT_MODEL_FILE,
    CHECKPOINT_INFERENCE_MODEL_FILE,
    CHECKPOINT_STATE_FILE,
    CHECKPOINT_BEST_WEIGHTS_FILE,
)


def dataset_key(dataset_id: str) -> str:
    """The arrays of an uploaded dataset (``x_train``, ``y_train``, ``x_test``, ``y_test``)."""
    return f"datasets/{dataset_id}.npz"


def job_prefix(job_id: str) -> str:
    """Every object of one job."""
    return f"{job_id}/"


def model_key(job_id: str, attempt: int) -> str:
    """The trained model of one attempt (the best weights when early stopping restored them)."""
    return f"{job_id}/model.attempt-{attempt}.keras"


def checkpoints_prefix(job_id: str) -> str:
    """Every epoch checkpoint of a job, deleted when the job ends."""
    return f"{job_id}/checkpoints/"


def checkpoint_prefix(job_id: str, attempt: int, epoch: int) -> str:
    """The files of the checkpoint that ``attempt`` wrote at the end of ``epoch``."""
    return f"{checkpoints_prefix(job_id)}attempt-{attempt}-epoch-{epoch:04d}/"


def checkpoint_key(job_id: str, attempt: int, epoch: int, file: str) -> str:
    """One file of a checkpoint."""
    return checkpoint_prefix(job_id, attempt, epoch) + file


def checkpoint_epoch(key: str) -> int:
    """The epoch of a key under ``checkpoints_prefix``."""
    folder = key.split("/")[2]
    return int(folder.rsplit("-", 1)[1])


def probe_key(name: str) -> str:
    """A start-up probe's object."""
    return f"probes/{name}"
