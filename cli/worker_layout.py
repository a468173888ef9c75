"""Which Celery worker processes ``kjobs worker`` runs on this machine: one per GPU (or several
sharing each), or one on the CPU.

Each GPU gets a solo-pool worker of its own, pinned to it with ``CUDA_VISIBLE_DEVICES``, so a
worker trains one job at a time on the whole of one GPU and no backend ever sees two; with
``--slots-per-gpu N``, N such workers share each GPU, each held to an equal share of its memory.
"""

import shlex
import sys
from dataclasses import dataclass, field

from shared.models.devices import Gpu
from shared.queue import QUEUES

GPU_QUEUE = "gpu"
CPU_QUEUES = "cpu"


class LayoutError(ValueError):
    """The options ask for a layout this machine cannot have."""


@dataclass(frozen=True)
class WorkerProcess:
    """One worker process to start: its name, command line and the environment it adds."""

    name: str
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    gpu: Gpu | None = None

    def describe(self) -> str:
        """One line for people: the process, its device, the environment it adds and its command."""
        gpu = self.gpu
        device = f"GPU {gpu.index} ({gpu.name}, {gpu.memory_bytes // 2**20} MiB)" if gpu else "CPU"
        env = [f"{name}={shlex.quote(value)}" for name, value in sorted(self.env.items())]
        return f"{self.name} on {device}: {' '.join([*env, shlex.join(self.argv)])}"


def celery_argv(queues: str, hostname: str, loglevel: str = "INFO") -> list[str]:
    """A solo-pool worker, one job at a time, on ``queues`` under node name ``hostname``."""
    return [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "worker.celery_app:app",
        "worker",
        "--pool=solo",
        "--concurrency=1",
        "-Q",
        queues,
        "--hostname",
        hostname,
        "-l",
        loglevel,
    ]


def check_queues(queues: str) -> list[str]:
    """The queue names of ``-Q``, each a known one."""
    names = [name.strip() for name in queues.split(",") if name.strip()]
    unknown = sorted(set(names) - set(QUEUES))
    if not names:
        raise LayoutError("-Q names no queue")
    if unknown:
        raise LayoutError(f"unknown queues: {', '.join(unknown)}; the queues are {', '.join(QUEUES)}")
    return names


def select_gpus(requested: str, available: list[Gpu]) -> list[Gpu]:
    """``all`` GPUs, or those whose indexes ``requested`` lists (``0,1``), each one present."""
    if requested.strip().lower() == "all":
        return available
    by_index = {gpu.index: gpu for gpu in available}
    chosen = []
    for part in filter(None, (part.strip() for part in requested.split(","))):
        if not part.isdigit():
            raise LayoutError(f"--gpus takes 'all' or GPU indexes such as 0,1, not {part!r}")
        if int(part) not in by_index:
            found = ", ".join(str(index) for index in by_index) or "none"
            raise LayoutError(f"there is no GPU {part} on this machine (GPUs found: {found})")
        if by_index[int(part)] not in chosen:
            chosen.append(by_index[int(part)])
    if not chosen:
        raise LayoutError("--gpus names no GPU")
    return chosen


SLOT_SHARE = 0.9
"""The part of a GPU's memory that its slots share out: each slot's process has a CUDA context of
its own (a few hundred MiB) outside its backend's limit."""


def plan_workers(
    gpus: str | None, queues: str | None, available: list[Gpu], loglevel: str = "INFO", slots_per_gpu: int = 1
) -> list[WorkerProcess]:
    """The worker processes for ``--gpus`` and ``-Q`` on a machine with the ``available`` GPUs.

    With GPUs asked for and found: ``slots_per_gpu`` workers per GPU on the gpu queue (``-Q``
    may not say otherwise); several on one GPU each get an equal share of its memory. Else one
    CPU worker on ``-Q`` (``cpu`` by default), which sees no GPU.
    """
    chosen = select_gpus(gpus, available) if gpus is not None else []
    if chosen:
        if queues is not None and check_queues(queues) != [GPU_QUEUE]:
            raise LayoutError("GPU workers consume the gpu queue only; leave out -Q or give -Q gpu")
        return [slot for gpu in chosen for slot in gpu_slots(gpu, slots_per_gpu, loglevel)]
    if slots_per_gpu > 1:
        raise LayoutError("--slots-per-gpu shares GPUs: give --gpus too")
    names = check_queues(queues or CPU_QUEUES)
    # An empty CUDA_VISIBLE_DEVICES hides any GPU, so the CPU worker never takes a GPU's memory.
    return [
        WorkerProcess("cpu", celery_argv(",".join(names), "cpu@%h", loglevel), {"CUDA_VISIBLE_DEVICES": ""})
    ]


def gpu_slots(gpu: Gpu, slots: int, loglevel: str) -> list[WorkerProcess]:
    """The workers of one GPU: the whole GPU to one, or to each of several an equal share of its
    memory, which each backend is held to (``GPU_MEMORY_MB``; JAX reads its fraction only from
    the environment it starts with)."""
    pinned = {"CUDA_VISIBLE_DEVICES": str(gpu.index)}
    if slots == 1:
        return [
            WorkerProcess(
                f"gpu{gpu.index}", celery_argv(GPU_QUEUE, f"gpu{gpu.index}@%h", loglevel), pinned, gpu
            )
        ]
    total_mib = gpu.memory_bytes // 2**20
    share_mib = int(total_mib * SLOT_SHARE / slots)
    if share_mib < 1:
        raise LayoutError(f"GPU {gpu.index} has too little memory ({total_mib} MiB) for {slots} slots")
    env = {
        **pinned,
        "GPU_MEMORY_MB": str(share_mib),
        "XLA_PYTHON_CLIENT_MEM_FRACTION": f"{share_mib / total_mib:.4f}",
        # A share is reserved whole at start (JAX): no slot can then take another's memory.
        "XLA_PYTHON_CLIENT_PREALLOCATE": "true",
    }
    return [
        WorkerProcess(
            f"gpu{gpu.index}-{slot}", celery_argv(GPU_QUEUE, f"gpu{gpu.index}-{slot}@%h", loglevel), env, gpu
        )
        for slot in range(slots)
    ]
