"""Prometheus metrics: the deployment's counters from Redis, and this process's request latency.

Workers do not serve metrics of their own: they write their counters (epoch durations, job
outcomes) to Redis in the transactions that record the epochs and the outcomes, and any API
process exposes the whole deployment's at ``GET /metrics``. Request latency is per API process
(each is a scrape target of its own).
"""

import time
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.jobs.store import JobStore
from shared.ops.registry import WorkerRegistry
from shared.ops.telemetry import Telemetry
from shared.queue import QUEUES

# Kombu keeps a queue's messages of each priority step in a list of its own.
_PRIORITY_SUFFIXES = ("", "\x06\x163", "\x06\x166", "\x06\x169")
REQUEST_SECONDS_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


class DeploymentCollector(Collector):
    """Reads the deployment's state from Redis at each scrape: a few commands, no key scans."""

    def __init__(self, store: JobStore, registry: WorkerRegistry) -> None:
        self.store = store
        self.workers = registry

    def collect(self) -> Iterator[Metric]:
        counters = Telemetry.read(self.store.redis, self.store.keys)
        jobs = GaugeMetricFamily("kjobs_jobs", "Stored jobs by status.", labels=["status"])
        for status, count in counters.jobs_by_status.items():
            jobs.add_metric([status], count)
        yield jobs
        yield CounterMetricFamily("kjobs_jobs_submitted", "Jobs submitted.", value=counters.submitted)
        finished = CounterMetricFamily(
            "kjobs_jobs_finished", "Jobs finished, by outcome.", labels=["outcome"]
        )
        for outcome, count in counters.finished_by_outcome.items():
            finished.add_metric([outcome], count)
        yield finished
        epochs = HistogramMetricFamily(
            "kjobs_epoch_duration_seconds", "Wall time of one training epoch on a worker."
        )
        buckets = [(f"{bound:g}", float(count)) for bound, count in counters.epoch_buckets]
        epochs.add_metric([], [*buckets, ("+Inf", float(counters.epoch_count))], counters.epoch_seconds_sum)
        yield epochs
        yield self._queue_depths()
        yield self._live_workers()

    def _queue_depths(self) -> GaugeMetricFamily:
        depth = GaugeMetricFamily("kjobs_queue_depth", "Messages waiting in each queue.", labels=["queue"])
        prefix = self.store.keys.broker_prefix()
        pipe = self.store.redis.pipeline(transaction=False)
        for queue in QUEUES:
            for suffix in _PRIORITY_SUFFIXES:
                pipe.llen(f"{prefix}{queue}{suffix}")
        lengths = [int(n) for n in pipe.execute()]
        steps = len(_PRIORITY_SUFFIXES)
        for i, queue in enumerate(QUEUES):
            depth.add_metric([queue], sum(lengths[i * steps : (i + 1) * steps]))
        return depth

    def _live_workers(self) -> GaugeMetricFamily:
        live = GaugeMetricFamily("kjobs_workers", "Live workers consuming each queue.", labels=["queue"])
        per_queue: dict[str, int] = dict.fromkeys(QUEUES, 0)
        for worker in self.workers.live():
            for queue in worker.queues:
                per_queue[queue] = per_queue.get(queue, 0) + 1
        for queue, count in per_queue.items():
            live.add_metric([queue], count)
        return live


def request_histogram(registry: CollectorRegistry) -> Histogram:
    """The API request latency histogram, registered in ``registry``."""
    return Histogram(
        "kjobs_api_request_duration_seconds",
        "API request latency, by route template, method and status.",
        labelnames=["route", "method", "status"],
        buckets=REQUEST_SECONDS_BUCKETS,
        registry=registry,
    )


class RequestMetrics:
    """Times every HTTP request into the app's request histogram, labelled by route template.

    Labels use the matched route's template (``/v1/jobs/{job_id}``), never the raw path, so the
    number of series stays bounded; an unmatched path counts as ``unmatched``. A streamed
    answer (the event stream) is timed to its end.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started, status = time.perf_counter(), 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            histogram: Histogram = scope["app"].state.request_seconds
            histogram.labels(template, scope["method"], str(status)).observe(time.perf_counter() - started)
