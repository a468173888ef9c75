"""The machine's NVIDIA GPUs as ``nvidia-smi`` lists them, and the device a worker trains on.

Imports no Keras: the CLI plans its worker processes from this list before any of them loads a
backend, and workers describe their GPU with it whatever the backend.
"""

import logging
import os
import platform
import shutil
import subprocess
from contextlib import suppress
from pathlib import Path

from shared.models.devices import DeviceInfo, Gpu

log = logging.getLogger(__name__)

FAKE_GPUS_ENV = "KJOBS_FAKE_GPUS"
"""Testing aid: ``index:name:MiB`` entries, comma-separated, listed instead of nvidia-smi's answer
(``"0:NVIDIA H100:81559,1:NVIDIA H100:81559"``; empty for a machine without GPUs)."""

NVIDIA_SMI_QUERY = ["--query-gpu=index,name,memory.total", "--format=csv,noheader,nounits"]
NVIDIA_SMI_TIMEOUT_SECONDS = 20.0
MIB = 1024 * 1024


class GpuListError(RuntimeError):
    """The GPU list cannot be read."""


def parse_fake_gpus(text: str) -> list[Gpu]:
    """``KJOBS_FAKE_GPUS``'s ``index:name:MiB`` entries as GPUs."""
    gpus = []
    for entry in filter(None, (part.strip() for part in text.split(","))):
        index, sep, rest = entry.partition(":")
        name, sep2, mib = rest.rpartition(":")
        if not (sep and sep2 and index.isdigit() and mib.isdigit() and name):
            raise GpuListError(f"{FAKE_GPUS_ENV}: {entry!r} is not index:name:MiB")
        gpus.append(Gpu(index=int(index), name=name, memory_bytes=int(mib) * MIB))
    return gpus


def parse_nvidia_smi(text: str) -> list[Gpu]:
    """``nvidia-smi --query-gpu=index,name,memory.total --format=csv,noheader,nounits`` as GPUs."""
    gpus = []
    for line in filter(None, (line.strip() for line in text.splitlines())):
        # A GPU's name may hold commas; its index comes first and its memory last.
        index, _, rest = line.partition(",")
        name, _, mib = rest.rpartition(",")
        try:
            gpus.append(Gpu(index=int(index), name=name.strip(), memory_bytes=int(float(mib)) * MIB))
        except ValueError:
            raise GpuListError(
                f"nvidia-smi printed a line that is not index, name, memory: {line!r}"
            ) from None
    return gpus


def list_gpus(environ: dict[str, str] | None = None) -> list[Gpu]:
    """The machine's GPUs: ``KJOBS_FAKE_GPUS`` when set, else nvidia-smi's list (none without it)."""
    env = os.environ if environ is None else environ
    if FAKE_GPUS_ENV in env:
        return parse_fake_gpus(env[FAKE_GPUS_ENV])
    binary = shutil.which("nvidia-smi")
    if binary is None:
        return []
    try:
        done = subprocess.run(
            [binary, *NVIDIA_SMI_QUERY],
            capture_output=True,
            text=True,
            timeout=NVIDIA_SMI_TIMEOUT_SECONDS,
            check=True,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        # nvidia-smi without a working driver (a container without the NVIDIA runtime) fails.
        log.warning("nvidia-smi lists no GPU: %s", exc)
        return []
    return parse_nvidia_smi(done.stdout)


def visible_gpu_index(environ: dict[str, str] | None = None) -> int | None:
    """The machine index of the first GPU CUDA_VISIBLE_DEVICES shows this process, if it names one."""
    env = os.environ if environ is None else environ
    first = env.get("CUDA_VISIBLE_DEVICES", "").split(",")[0].strip()
    return int(first) if first.isdigit() else None


def cpu_device() -> DeviceInfo:
    """This machine's CPU: its model (from /proc/cpuinfo where there is one) and memory."""
    name = platform.processor() or platform.machine() or "cpu"
    with suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and value.strip():
                name = value.strip()
                break
    memory: int | None = None
    with suppress(ValueError, OSError, AttributeError):
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return DeviceInfo(kind="cpu", name=name, memory_bytes=memory)


def gpu_device(environ: dict[str, str] | None = None) -> DeviceInfo | None:
    """The first GPU this process sees, as nvidia-smi describes it; None without nvidia-smi's answer."""
    index = visible_gpu_index(environ)
    # nvidia-smi's own answer, never the testing aid's list: a record must name the real device.
    gpus = [gpu for gpu in list_gpus({}) if index is None or gpu.index == index]
    if not gpus:
        return None
    gpu = gpus[0]
    return DeviceInfo(kind="gpu", name=gpu.name, memory_bytes=gpu.memory_bytes, index=gpu.index)
