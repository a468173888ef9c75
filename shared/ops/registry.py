"""Worker heartbeats in Redis: which workers are alive, on which queues, doing what."""

import json
import time

from pydantic import BaseModel, Field, field_validator
from redis import Redis

from shared.models.devices import DeviceInfo
from shared.redis.keys import RedisKeys


class WorkerInfo(BaseModel):
    name: str = Field(description="Celery's node name of the worker.")
    queues: list[str]
    host: str = ""
    pid: int
    backend: str | None = Field(None, description="The Keras backend, once the worker has loaded it.")
    device: DeviceInfo | None = Field(None, description="What the worker trains on, once it knows.")
    current_job: str | None = None
    slot_memory_mb: int | None = Field(
        None,
        description="The GPU memory (MiB) a job may use on this worker: its share of the GPU, or the "
        "whole GPU's; null on a CPU, where no job asks for any.",
    )
    started_at: float
    seen_at: float

    @field_validator("device", mode="before")
    @classmethod
    def _device_of_older_workers(cls, value: object) -> object:
        # Workers of earlier versions reported their device as a plain string.
        if isinstance(value, str):
            return {"kind": "cpu" if value == "cpu" else "gpu", "name": value}
        return value


class WorkerRegistry:
    """Heartbeats that expire on their own, so a dead worker drops out without any cleanup."""

    def __init__(self, redis: Redis, keys: RedisKeys) -> None:
        self.redis = redis
        self.keys = keys

    def beat(self, info: WorkerInfo, ttl_seconds: float) -> None:
        """Record ``info`` as alive for ``ttl_seconds``."""
        expires_ms = int((time.time() + ttl_seconds) * 1000)
        pipe = self.redis.pipeline(transaction=True)
        pipe.set(self.keys.worker(info.name), info.model_dump_json(), px=int(ttl_seconds * 1000))
        pipe.zadd(self.keys.workers(), {info.name: expires_ms})
        pipe.execute()

    def came_free(self) -> None:
        """Nudge the dispatcher: a worker has just put its job down (``shared.scheduling``)."""
        self.redis.rpush(self.keys.dispatch_wake(), "1")

    def leave(self, name: str) -> None:
        """Drop a worker that shuts down cleanly."""
        pipe = self.redis.pipeline(transaction=True)
        pipe.delete(self.keys.worker(name))
        pipe.zrem(self.keys.workers(), name)
        pipe.execute()

    def live(self) -> list[WorkerInfo]:
        """The workers whose heartbeat has not expired."""
        self.redis.zremrangebyscore(self.keys.workers(), "-inf", int(time.time() * 1000))
        names = [str(name) for name in self.redis.zrange(self.keys.workers(), 0, -1)]
        if not names:
            return []
        raw = self.redis.mget([self.keys.worker(name) for name in names])
        return [WorkerInfo.model_validate(json.loads(str(item))) for item in raw if item is not None]
