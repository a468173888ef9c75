"""The Celery app workers run: ``celery -A worker.celery_app:app worker --pool=solo``.

Run it with the solo pool (as ``kjobs worker`` and docker-compose do): the worker process
itself trains, one job at a time, and never forks after Keras is loaded. (Celery takes a pool
set in the app's configuration over the command line's, so the choice is left to the command.)
Prefork also works (``--pool=prefork --concurrency=N``): Keras is then imported only in the
pool children, when they start, and a killed child is replaced by its parent.
"""

import logging
import os
import sys
from contextlib import AbstractContextManager
from functools import lru_cache
from typing import Any

from celery import Celery
from celery.signals import (
    celeryd_after_setup,
    setup_logging,
    task_postrun,
    task_prerun,
    worker_init,
    worker_process_init,
    worker_ready,
    worker_shutdown,
)

from shared.datasets.store import DatasetStore
from shared.jobs.attempts import AttemptStore
from shared.jobs.dispatch import Dispatch
from shared.jobs.endings import Endings
from shared.jobs.store import JobStore
from shared.logs import configure_logging, job_context
from shared.models.devices import DeviceInfo
from shared.models.jobs import AttemptWorker
from shared.ops.registry import WorkerRegistry
from shared.queue import QUEUES, create_celery_app, direct_queue
from shared.scheduling.dispatcher import Dispatcher
from shared.settings import get_settings
from shared.storage import ArtifactStore, open_store
from shared.studies.journal import storage_on
from shared.studies.search import Search
from shared.studies.store import StudyStore
from worker.cache import ArtifactCache
from worker.deliverer import Deliverer
from worker.heartbeat import Heartbeat
from worker.reaper import Reaper
from worker.redis_gate import check_redis
from worker.retention import RetentionSweep
from worker.store_gate import check_store

log = logging.getLogger(__name__)


def create_worker_app() -> Celery:
    """The shared Celery app with the worker's defaults and tasks."""
    app = create_celery_app(get_settings())
    app.conf.imports = ("worker.tasks",)
    return app


# Celery's -A target must be a configured app when this module is imported; a worker process
# reads its environment once, here, at start.
app = create_worker_app()


@lru_cache
def get_attempts() -> AttemptStore:
    """This process's job store, with the lease settings."""
    settings = get_settings()
    return AttemptStore(JobStore.from_settings(settings), settings.lease_seconds, settings.max_attempts)


@lru_cache
def get_dispatch() -> Dispatch:
    """This process's sender of jobs to their queues."""
    return Dispatch(get_attempts().store, app)


@lru_cache
def get_artifacts() -> ArtifactStore:
    """This process's artifact store."""
    return open_store(get_settings())


@lru_cache
def get_cache() -> ArtifactCache:
    """This process's checked local copies of what it reads from the artifact store."""
    settings = get_settings()
    return ArtifactCache(get_artifacts(), settings.cache_dir, settings.cache_max_bytes)


@lru_cache
def get_studies() -> StudyStore:
    """This process's study store."""
    return StudyStore(get_dispatch())


@lru_cache
def get_search() -> Search:
    """This process's asker, teller and judge of searches' trials."""
    studies = get_studies()
    return Search(studies, DatasetStore(studies.store, get_artifacts()), get_settings())


@lru_cache
def get_endings() -> Endings:
    """This process's settler of ended jobs' follow-ups."""
    return Endings(get_studies(), get_artifacts(), get_search())


_heartbeat: list[Heartbeat] = []
_dispatcher: list[Dispatcher] = []
_deliverer: list[Deliverer] = []


def current_heartbeat() -> Heartbeat | None:
    """The heartbeat of this worker, once it is ready."""
    return _heartbeat[0] if _heartbeat else None


def trainer_device() -> tuple[str, DeviceInfo] | None:
    """The backend and device this process trains on, once it has loaded Keras; never loads it to ask."""
    if "worker.training" not in sys.modules:
        return None
    from worker.backend import backend_name, describe_device

    return backend_name(), describe_device()


def slot_memory_mb(share_mb: int | None, device: DeviceInfo | None) -> int | None:
    """The GPU memory a job may use here: this worker's share, else its whole GPU's; None on a
    CPU (or a GPU of unknown memory)."""
    if share_mb is not None:
        return share_mb
    if device is not None and device.kind == "gpu" and device.memory_bytes:
        return device.memory_bytes // 2**20
    return None


def attempt_worker() -> AttemptWorker | None:
    """This worker and its device, as a job's attempt records them; None before it is ready."""
    heartbeat = current_heartbeat()
    if heartbeat is None or heartbeat.device is None or heartbeat.backend is None:
        return None
    return AttemptWorker(
        name=heartbeat.name,
        host=heartbeat.host,
        pid=os.getpid(),
        backend=heartbeat.backend,
        device=heartbeat.device,
    )


@worker_init.connect  # type: ignore[untyped-decorator]
def _check_stores(**_: Any) -> None:
    # Sent in the worker's main process before its pool starts (so before Keras loads) and before
    # it consumes anything: a worker that refuses its Redis or its artifact store has taken no
    # task. Celery's logging is set up only later, so the refusal is logged with ours.
    settings = get_settings()
    configure_logging(settings.log_format, settings.log_level)
    check_redis(settings)
    check_store(settings)


@celeryd_after_setup.connect  # type: ignore[untyped-decorator]
def _take_direct_queue(sender: str, instance: Any, **_: Any) -> None:
    # Besides its queues, each worker takes a queue of its own: the dispatcher sends there a job
    # that needs a slot of some GPU memory, having chosen this worker for it.
    instance.app.amqp.queues.select_add(direct_queue(sender))


@worker_process_init.connect  # type: ignore[untyped-decorator]
def _load_trainer(**_: Any) -> None:
    # Sent in the process that trains (the solo worker itself, or each prefork child), never in
    # a prefork parent: load Keras here, so the backend logs its devices and sets up memory
    # growth at start, and the first job does not wait for the import. A worker given a share of
    # its GPU holds its backend to it first, before the backend takes any memory.
    memory_mb = get_settings().gpu_memory_mb
    if memory_mb is not None:
        from worker.gpu_memory import limit_gpu_memory

        limit_gpu_memory(memory_mb)
    from worker import training  # noqa: F401

    # A prefork child is forked from a parent whose heartbeat thread runs: the child must not
    # use the copy (its lock may have been held at the fork). Nor the webhook deliverer's, nor
    # the parent's searches (whose journal storage has a lock of its own): it makes its own.
    _heartbeat.clear()
    _deliverer.clear()
    _dispatcher.clear()
    for cached in (get_endings, get_search, get_studies, storage_on):
        cached.cache_clear()


@worker_ready.connect  # type: ignore[untyped-decorator]
def _start_heartbeat(sender: Any = None, **_: Any) -> None:
    settings = get_settings()
    consumed = sender.app.amqp.queues.consume_from.values()
    queues = sorted(queue.name for queue in consumed if queue.name in QUEUES)  # not its direct one
    attempts = get_attempts()
    registry = WorkerRegistry(attempts.store.redis, attempts.store.keys)
    endings = get_endings()
    datasets = DatasetStore(attempts.store, get_artifacts())
    retention = RetentionSweep(endings.studies, datasets, settings)
    reaper = Reaper(attempts, get_dispatch(), endings, retention, settings)
    heartbeat = Heartbeat(
        registry, sender.hostname, queues, settings.worker_heartbeat_seconds, [reaper.run_once]
    )
    trainer = trainer_device()
    if trainer is not None:
        heartbeat.set_device(*trainer)
    heartbeat.slot_memory_mb = slot_memory_mb(settings.gpu_memory_mb, trainer[1] if trainer else None)
    heartbeat.start()
    _heartbeat.append(heartbeat)
    dispatcher = Dispatcher(get_dispatch(), registry, settings)
    dispatcher.start()
    _dispatcher.append(dispatcher)
    deliverer = Deliverer.from_settings(settings)
    deliverer.start()
    _deliverer.append(deliverer)
    log.info("worker %s ready on queues %s", sender.hostname, ",".join(queues))


@worker_shutdown.connect  # type: ignore[untyped-decorator]
def _stop_heartbeat(**_: Any) -> None:
    while _dispatcher:
        _dispatcher.pop().stop()
    while _heartbeat:
        _heartbeat.pop().stop()
    while _deliverer:
        _deliverer.pop().stop()


@setup_logging.connect  # type: ignore[untyped-decorator]
def _configure_logging(loglevel: int | str | None = None, **_: Any) -> None:
    # Connected, this replaces Celery's own logging setup: its lines and ours share one format.
    settings = get_settings()
    configure_logging(settings.log_format, loglevel or settings.log_level)


_job_contexts: dict[str, AbstractContextManager[None]] = {}


@task_prerun.connect  # type: ignore[untyped-decorator]
def _enter_job(task_id: str, args: tuple[Any, ...] = (), **_: Any) -> None:
    # Around the whole task, so Celery's own lines about it (its outcome) carry the job too.
    if args and isinstance(args[0], str):
        context = job_context(args[0])
        context.__enter__()
        _job_contexts[task_id] = context


@task_postrun.connect  # type: ignore[untyped-decorator]
def _leave_job(task_id: str, **_: Any) -> None:
    context = _job_contexts.pop(task_id, None)
    if context is not None:
        context.__exit__(None, None, None)
