"""Prometheus metrics: the deployment's counters from Redis, and this process's request latency.

Workers do not serve metrics of their own: they write their counters (epoch durations, job
outcomes) to Redis in the transactions that record the epochs and the outcomes, and any API
process exposes the whole deployment's at ``GET /metrics``. Request latency is per API process
(each is a scrape target of its own).
"""

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from shared.jobs.store import JobStore
from shared.ops.registry import WorkerRegistry
from shared.ops.telemetry import Telemetry
from shared.queue import QUEUES, queue_depths
from shared.scheduling.places import QueueReader

REQUEST_SECONDS_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


class DeploymentCollector(Collector):
    """Reads the deployment's state from Redis at each scrape: a few round trips, no key scans
    (the waiting jobs are counted per tenant waiting, in one pipeline)."""

    def __init__(self, store: JobStore, registry: WorkerRegistry, queue: QueueReader) -> None:
        self.store = store
        self.workers = registry
        self.queue = queue

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
        yield self._waiting()
        yield self._live_workers()

    def _queue_depths(self) -> GaugeMetricFamily:
        depth = GaugeMetricFamily("kjobs_queue_depth", "Messages waiting in each queue.", labels=["queue"])
        for queue, count in queue_depths(self.store.redis, self.store.keys).items():
            depth.add_metric([queue], count)
        return depth

    def _waiting(self) -> GaugeMetricFamily:
        waiting = GaugeMetricFamily(
            "kjobs_jobs_waiting",
            "Queued jobs waiting for a slot, by queue and priority.",
            labels=["queue", "priority"],
        )
        for (queue, priority), count in self.queue.waiting_counts().items():
            waiting.add_metric([queue, priority], count)
        return waiting

    def _live_workers(self) -> GaugeMetricFamily:
        live = GaugeMetricFamily("kjobs_workers", "Live workers consuming each queue.", labels=["queue"])
        per_queue: dict[str, int] = dict.fromkeys(QUEUES, 0)
        for worker in self.workers.live():
            for queue in worker.queues:
                per_queue[queue] = per_queue.get(queue, 0) + 1
        for queue, count in per_queue.items():
            live.add_metric([queue], count)
        return live


METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
"""Methods that label a series by name; any other is ``other``, so clients cannot add series."""


class RequestSeconds:
    """The API request latency histogram (by route template, method and status), registered in
    a registry; each series is looked up once, since a request is a few hundred microseconds."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.histogram = Histogram(
            "kjobs_api_request_duration_seconds",
            "API request latency, by route template, method and status.",
            labelnames=["route", "method", "status"],
            buckets=REQUEST_SECONDS_BUCKETS,
            registry=registry,
        )
        self._series: dict[tuple[str, str, int], Histogram] = {}

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        """Count one request of ``seconds``."""
        key = (route, method if method in METHODS else "other", status)
        series = self._series.get(key)
        if series is None:
            series = self._series[key] = self.histogram.labels(key[0], key[1], str(status))
        series.observe(seconds)
