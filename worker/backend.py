"""The device this process trains on, as its Keras backend (TensorFlow, JAX or PyTorch) sees it.

Imports Keras: only the process that trains imports it (through ``worker.training``).
"""

import keras

from shared.models.devices import DeviceInfo
from shared.ops.hardware import cpu_device, gpu_device, visible_gpu_index


def backend_name() -> str:
    """The Keras backend of this process: ``tensorflow``, ``jax`` or ``torch``."""
    return str(keras.backend.backend())


def accelerators() -> list[str]:
    """The GPUs the backend trains on (``gpu:0``...); empty when it trains on the CPU."""
    if backend_name() == "torch":
        # Keras has no device listing for PyTorch; PyTorch itself says whether CUDA is there.
        import torch

        return [f"gpu:{index}" for index in range(torch.cuda.device_count())]
    devices = [str(device).lower() for device in keras.distribution.list_devices()]
    return [device for device in devices if "gpu" in device or "cuda" in device]


def _backend_gpu_name() -> str:
    if backend_name() == "torch":
        import torch

        return str(torch.cuda.get_device_name(0))
    return accelerators()[0]


def describe_device() -> DeviceInfo:
    """The GPU the backend trains on (nvidia-smi's name and memory for it), or the CPU."""
    if not accelerators():
        return cpu_device()
    described = gpu_device()
    if described is not None:
        return described
    return DeviceInfo(kind="gpu", name=_backend_gpu_name(), index=visible_gpu_index())
