"""Holding a worker's Keras backend to its share of a GPU, and telling a job that outgrew it.

``kjobs worker --slots-per-gpu N`` runs N workers on each GPU, each with ``GPU_MEMORY_MB`` set
to its share. Each backend has its own means, applied before it takes any memory: TensorFlow a
logical device with that memory limit; PyTorch a per-process memory fraction; JAX the fraction
in ``XLA_PYTHON_CLIENT_MEM_FRACTION``, which only the environment it starts with can set (the
supervisor sets it beside ``GPU_MEMORY_MB``).
"""

import logging
import os

log = logging.getLogger(__name__)

OUT_OF_MEMORY_MARKERS = ("RESOURCE_EXHAUSTED", "out of memory", "OOM when allocating")


def limit_gpu_memory(memory_mb: int) -> None:
    """Hold this process's backend to ``memory_mb`` of its GPU (a no-op without a GPU)."""
    backend = os.environ.get("KERAS_BACKEND", "tensorflow")
    if backend == "tensorflow":
        import tensorflow as tf

        gpus = tf.config.list_physical_devices("GPU")
        if gpus:
            limit = [tf.config.LogicalDeviceConfiguration(memory_limit=memory_mb)]
            tf.config.set_logical_device_configuration(gpus[0], limit)
            log.info("GPU memory held to %d MiB (a TensorFlow logical device)", memory_mb)
            return
    elif backend == "torch":
        import torch

        if torch.cuda.is_available():
            total = torch.cuda.get_device_properties(0).total_memory
            torch.cuda.set_per_process_memory_fraction(min(1.0, memory_mb * 2**20 / total), 0)
            log.info("GPU memory held to %d MiB (a PyTorch memory fraction)", memory_mb)
            return
    elif os.environ.get("XLA_PYTHON_CLIENT_MEM_FRACTION"):
        log.info(
            "GPU memory held to XLA_PYTHON_CLIENT_MEM_FRACTION=%s",
            os.environ["XLA_PYTHON_CLIENT_MEM_FRACTION"],
        )
        return
    log.info("GPU_MEMORY_MB=%d not applied: the %s backend sees no GPU here", memory_mb, backend)


def ran_out_of_memory(error: BaseException) -> bool:
    """Whether ``error`` is a backend's report of a device out of memory (TensorFlow's
    ResourceExhaustedError, PyTorch's OutOfMemoryError, XLA's RESOURCE_EXHAUSTED)."""
    name = type(error).__name__
    if name in ("ResourceExhaustedError", "OutOfMemoryError"):
        return True
    text = str(error)
    return any(marker in text for marker in OUT_OF_MEMORY_MARKERS)
