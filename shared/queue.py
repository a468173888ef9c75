"""The Celery app factory, queue names and task names shared by the API and the workers.

The API sends tasks by name through an app made here, so it never imports the worker's code
(or TensorFlow); the worker registers its tasks on an app made by the same factory.
"""

import ssl
from typing import Any, get_args

from celery import Celery
from kombu import Queue  # type: ignore[attr-defined]
from redis import Redis

from shared.models.spec import QueueName
from shared.redis.connection import sentinel_options, sentinels_of
from shared.redis.keys import RedisKeys
from shared.settings import Settings

TRAIN_TASK = "keras_jobs.train"
QUEUES: tuple[QueueName, ...] = get_args(QueueName)


def create_celery_app(settings: Settings) -> Celery:
    """A Celery app on Redis, configured for long, GPU-bound jobs."""
    app = Celery("keras_jobs", broker=settings.redis_url)
    app.conf.update(
        # JSON only: a message can never make a worker unpickle something.
        task_serializer="json",
        accept_content=["json"],
        result_serializer="json",
        # Job state lives in our own records, not in Celery results.
        task_ignore_result=True,
        # Acknowledge after the job ends, and requeue it if the worker process dies, so a lost
        # worker never loses a job; one message at a time, so a busy worker hoards none.
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        # A prefork child loads Keras when it starts (worker.celery_app), which takes seconds on a
        # busy machine: within Celery's default 4 s the parent kills it and forks another, forever.
        worker_proc_alive_timeout=120,
        broker_transport_options=transport_options(settings),
        broker_use_ssl=broker_tls(settings),
        broker_connection_retry_on_startup=True,
        # A worker outlives any Redis outage: it reconnects for as long as it takes.
        broker_connection_max_retries=None,
        # A submit must answer quickly even when the broker is away.
        broker_connection_timeout=settings.redis_connect_timeout_seconds,
        task_publish_retry_policy={
            "max_retries": 2,
            "interval_start": 0,
            "interval_step": 0.5,
            "interval_max": 1,
        },
        task_queues=[Queue(name) for name in QUEUES],  # type: ignore[no-untyped-call]
        task_default_queue=settings.default_queue,
        worker_hijack_root_logger=False,
        worker_send_task_events=True,
        task_send_sent_event=True,
    )
    return app


def transport_options(settings: Settings) -> dict[str, Any]:
    """The Redis transport's options: redelivery after the longest job, our key prefix on the
    broker's keys too (deployments sharing a Redis never meet), and, through Redis Sentinel, the
    primary's name and the sentinels' password."""
    options: dict[str, Any] = {
        # Redis redelivers unacknowledged messages after this; it must outlast the longest job.
        "visibility_timeout": settings.broker_visibility_timeout,
        "global_keyprefix": RedisKeys(settings.key_prefix).broker_prefix(),
    }
    if sentinels_of(settings.redis_url) is not None:
        options["master_name"] = settings.redis_sentinel_master
        options["sentinel_kwargs"] = sentinel_options(settings)
    return options


def broker_tls(settings: Settings) -> dict[str, Any] | None:
    """For a ``rediss://`` broker, TLS that checks the server's certificate (Celery refuses such
    a URL without a word on it, unless the URL says ``ssl_cert_reqs``)."""
    if not settings.redis_url.startswith("rediss://") or "ssl_cert_reqs" in settings.redis_url:
        return None
    return {"ssl_cert_reqs": ssl.CERT_REQUIRED}


# Kombu keeps a queue's messages of each priority step in a list of its own.
_PRIORITY_SUFFIXES = ("", "\x06\x163", "\x06\x166", "\x06\x169")


def queue_depths(redis: Redis, keys: RedisKeys) -> dict[str, int]:
    """Messages waiting in each queue of the broker."""
    pipe = redis.pipeline(transaction=False)
    for queue in QUEUES:
        for suffix in _PRIORITY_SUFFIXES:
            pipe.llen(f"{keys.broker_prefix()}{queue}{suffix}")
    lengths = [int(n) for n in pipe.execute()]
    steps = len(_PRIORITY_SUFFIXES)
    return {queue: sum(lengths[i * steps : (i + 1) * steps]) for i, queue in enumerate(QUEUES)}


def direct_queue(worker: str) -> str:
    """The queue that only the worker named ``worker`` takes: a job that needs a slot of some GPU
    memory is sent there (``shared.scheduling``)."""
    return f"{worker}.slot"


def send_training(app: Celery, job_id: str, queue: str) -> None:
    """Enqueue the training of a stored job on ``queue`` (a queue name, or a worker's direct
    queue); the message carries only its id."""
    app.send_task(TRAIN_TASK, args=[job_id], queue=queue)
