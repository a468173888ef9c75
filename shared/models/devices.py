"""The devices workers train on, as jobs and the worker list describe them."""

from typing import Literal

from pydantic import BaseModel, Field


class Gpu(BaseModel):
    """One GPU of the machine."""

    index: int = Field(description="The GPU's index, as CUDA_VISIBLE_DEVICES names it.")
    name: str
    memory_bytes: int


class DeviceInfo(BaseModel):
    """What a worker trains on."""

    kind: Literal["cpu", "gpu"]
    name: str = Field(description="The GPU's model, or the CPU's.")
    memory_bytes: int | None = Field(
        None, description="The GPU's memory, or the machine's for a CPU; null when unknown."
    )
    index: int | None = Field(
        None, description="The GPU's index on its machine (as CUDA_VISIBLE_DEVICES names it); null for a CPU."
    )
