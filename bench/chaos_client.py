"""The soak's client side, written as a careful real client would be: every submission carries an
Idempotency-Key and is retried with it until it is answered, reads are retried, and nothing
gives up because the API or Redis is away for a while.
"""

import math
import random
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any, TypeVar

import httpx

from api.schemas import JobView, StudyView
from bench.chaos_analysis import WorkerSample
from client.errors import ApiError, KJobsError, ServiceUnreachable
from client.retry import NO_RETRIES, RetryPolicy
from client.sync_client import KJobsClient

T = TypeVar("T")
# Within one call: short waits, so a restarted API is found again within a second or two.
RETRY = RetryPolicy(attempts=20, backoff_seconds=0.25, max_backoff_seconds=2.0)
PATIENCE_SECONDS = 300.0  # how long one logical call keeps trying, across its calls
TRANSIENT_STATUSES = frozenset({429, 500, 502, 503, 504})


class CountingTransport(httpx.HTTPTransport):
    """Counts what each try of a submission met: its status, ``replayed`` when the service
    answered with the job an earlier try made, or the connection error."""

    def __init__(self) -> None:
        super().__init__()
        self.outcomes: Counter[str] = Counter()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.method != "POST":
            return super().handle_request(request)
        kind = request.url.path.rsplit("/", 1)[-1]  # jobs or studies
        try:
            response = super().handle_request(request)
        except httpx.TransportError as error:
            self.outcomes[f"{kind} {type(error).__name__}"] += 1
            raise
        replayed = response.headers.get("Idempotent-Replayed") == "true"
        self.outcomes[f"{kind} {response.status_code}{' replayed' if replayed else ''}"] += 1
        return response


def patient(call: Callable[[], T], what: str) -> T:
    """``call()`` again and again while the service is unreachable or answers a transient error."""
    deadline = time.monotonic() + PATIENCE_SECONDS
    while True:
        try:
            return call()
        except KJobsError as error:
            transient = isinstance(error, ServiceUnreachable) or (
                isinstance(error, ApiError) and error.status in TRANSIENT_STATUSES
            )
            if not transient or time.monotonic() > deadline:
                raise RuntimeError(f"{what}: {error}") from error
            time.sleep(1.0)


def job_spec(name: str, epochs: int, train_limit: int, hidden: int = 32) -> dict[str, Any]:
    """A small job: a few thousand MNIST images, one small dense layer, seconds of training."""
    return {
        "name": name,
        "dataset": {"name": "mnist", "train_limit": train_limit},
        "model": {"hidden_layers": [hidden]},
        "training": {"epochs": epochs, "batch_size": 32, "learning_rate": 0.003},
    }


def study_request(name: str, base: dict[str, Any], variants: int, max_parallel: int) -> dict[str, Any]:
    """A study of ``variants`` hidden-layer widths on ``base``, ``max_parallel`` at a time."""
    widths = [16 * (i + 1) for i in range(variants)]
    return {
        "name": name,
        "base": {key: value for key, value in base.items() if key != "name"},
        "variants": [{"name": f"h{w}", "overrides": {"model": {"hidden_layers": [w]}}} for w in widths],
        "max_parallel": max_parallel,
    }


@dataclass
class Workload:
    """Submits the soak's jobs, at most ``window`` of its own unfinished at once, and the study
    a third of the way in, while a follower keeps every job's latest view.

    A submission goes at a random moment once a place is free, not right after the follower's
    last read, so that it meets a restarting API or Redis as often as chance has it."""

    submitter: KJobsClient
    follower: KJobsClient
    specs: list[dict[str, Any]]
    study: dict[str, Any]
    window: int
    rng: random.Random
    views: dict[str, JobView] = field(default_factory=dict)
    study_view: StudyView | None = None
    deadline: float = math.inf  # on the monotonic clock: when following the jobs gives up
    submitted: threading.Event = field(default_factory=threading.Event)
    ended: threading.Event = field(default_factory=threading.Event)
    error: Exception | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def run(self, stop: threading.Event) -> None:
        """Submit everything while following every job to its end; ``ended`` is set when done.
        A failure is kept in ``error``."""
        follower = threading.Thread(target=self.follow, args=(stop,))
        follower.start()
        try:
            self.submit_all(stop)
        except Exception as error:
            self.error = error
        finally:
            self.submitted.set()
            follower.join()
            self.ended.set()

    def submit_all(self, stop: threading.Event) -> None:
        """Submit each job once a place in the window is free, and the study after a third."""
        study_after = len(self.specs) // 3
        for index, spec in enumerate(self.specs):
            while len(self.unfinished(singles_only=True)) >= self.window:
                if stop.is_set() or self.error is not None:
                    raise RuntimeError("the soak stopped before every job was submitted")
                time.sleep(0.1)
            time.sleep(self.rng.uniform(0.0, 1.0))
            self.submit(spec)
            if index == study_after:
                self.submit_study()

    def follow(self, stop: threading.Event) -> None:
        """Read every unfinished job's view until all are submitted and ended (or the deadline),
        then the study's."""
        try:
            while not stop.is_set() and time.monotonic() < self.deadline:
                left = self.unfinished()
                if not left and self.submitted.is_set():
                    break
                self.refresh(left)
                time.sleep(0.5)
            if self.study_view is not None:
                study_id = self.study_view.id
                self.study_view = patient(partial(self.follower.get_study, study_id), "the study")
        except Exception as error:
            self.error = error

    def unfinished(self, *, singles_only: bool = False) -> list[str]:
        """Ids of jobs not ended yet (without the study's, with ``singles_only``)."""
        study = {job.job_id for job in self.study_view.jobs} if singles_only and self.study_view else set()
        with self.lock:
            views = list(self.views.items())
        return [i for i, view in views if not view.status.is_terminal() and i not in study]

    def refresh(self, job_ids: list[str], client: KJobsClient | None = None) -> None:
        """Read the latest view of each job."""
        for job_id in job_ids:
            view = patient(partial((client or self.follower).get_job, job_id), f"job {job_id}")
            with self.lock:
                self.views[job_id] = view

    def epochs(self, job_id: str) -> list[int]:
        """The epoch numbers of the job's records, in the order the service lists them."""
        page = patient(partial(self.follower.metrics, job_id), f"metrics of {job_id}")
        return [record.epoch for record in page.records]

    def submit(self, spec: dict[str, Any]) -> None:
        """Submit one job under one Idempotency-Key for all its tries."""
        key = uuid.uuid4().hex
        view = patient(lambda: self.submitter.submit(spec, idempotency_key=key), f"submit {spec['name']}")
        with self.lock:
            self.views[view.id] = view

    def submit_study(self) -> None:
        """Create the study once. A study takes no Idempotency-Key, so after a failed try the
        client looks for it by its name (unique to this run) before trying again."""
        name = self.study["name"]
        while self.study_view is None:
            try:
                self.study_view = self.submitter.create_study(self.study)
            except KJobsError:
                time.sleep(1.0)
                found = patient(lambda: self.submitter.list_studies(limit=100), "list studies")
                self.study_view = next((s for s in found.items if s.name == name), None)
        self.refresh([job.job_id for job in self.study_view.jobs], self.submitter)


@dataclass
class WorkerSampler:
    """Looks at /readyz every second: how many cpu workers are alive, and how many idle."""

    url: str
    token: str
    samples: list[WorkerSample] = field(default_factory=list)

    def run(self, stop: threading.Event) -> None:
        """Sample until ``stop`` is set."""
        with KJobsClient(self.url, "unused", retry=NO_RETRIES, timeout=2.0) as client:
            while not stop.is_set():
                self.samples.append(self._look(client))
                stop.wait(1.0)

    def _look(self, client: KJobsClient) -> WorkerSample:
        at = time.time()
        try:
            readiness = client.ready(self.token)
        except KJobsError:
            return WorkerSample(at, None, None)
        if not readiness.ready:
            return WorkerSample(at, None, None)
        live = [w for w in readiness.live_workers if "cpu" in w.queues]
        return WorkerSample(at, len(live), sum(1 for w in live if w.status == "idle"))


def shuffled_specs(count: int, epochs: int, train_limit: int, seed: int) -> list[dict[str, Any]]:
    """``count`` single-job specs, their epochs drawn from 2..``epochs`` (seeded)."""
    rng = random.Random(seed)
    low = min(2, epochs)
    return [job_spec(f"chaos-{i:03d}", rng.randint(low, epochs), train_limit) for i in range(count)]
