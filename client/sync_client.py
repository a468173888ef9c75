"""``KJobsClient``: the REST API of keras-jobs from synchronous code."""

import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Any, Self, TypeVar

import httpx

from api.schemas import (
    Health,
    JobPage,
    JobSummary,
    JobView,
    MetricsPage,
    PresetView,
    Readiness,
    StudyPage,
    StudyView,
    WorkerList,
)
from client import calls
from client.calls import Call, ReportFormat, SpecLike, StudyLike
from client.config import resolve_url
from client.errors import ApiError
from client.events import EpochEvent, EventDecoder, JobEvent, StateEvent
from client.retry import RetryPolicy, Tries, unreachable
from client.transfer import (
    DEFAULT_TIMEOUT_SECONDS,
    PartialFile,
    default_headers,
    read_files,
    request_arguments,
)
from shared.models.datasets import DatasetInfo
from shared.models.jobs import JobStatus
from shared.models.queue import QueueSummary
from shared.models.webhooks import DeliveryLog, WebhookSecret

T = TypeVar("T")


class KJobsClient:
    """A client of one keras-jobs service; use it as a context manager, or ``close()`` it.

    ``url`` and ``api_key`` default to ``KJOBS_URL`` (else ``http://127.0.0.1:8000``) and
    ``KJOBS_API_KEY``. Errors raise ``ApiError`` (the service's problem document) or
    ``ServiceUnreachable``; both are ``KJobsError``.
    """

    def __init__(
        self,
        url: str | None = None,
        api_key: str | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        retry: RetryPolicy | None = None,
        transport: httpx.BaseTransport | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.url = resolve_url(url)
        self.retry = retry or RetryPolicy()
        self._http = httpx.Client(
            base_url=self.url, timeout=timeout, transport=transport, headers=default_headers(api_key, headers)
        )

    def close(self) -> None:
        """Close the connections."""
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()

    # Jobs

    def submit(self, spec: SpecLike, *, idempotency_key: str | None = None) -> JobView:
        """Submit a job (a spec, or ``{"preset": ...}`` with overrides); safe to retry, it is
        created once. Without ``idempotency_key`` the call makes one for all its tries."""
        return self._call(calls.submit_job(spec, idempotency_key))

    def list_jobs(
        self,
        *,
        status: Sequence[JobStatus | str] = (),
        tag: Mapping[str, str] | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> JobPage:
        """One page of jobs, newest first; pass ``next_cursor`` as ``cursor`` for the next."""
        return self._call(calls.list_jobs(status, tag, limit, cursor))

    def iter_jobs(
        self,
        *,
        status: Sequence[JobStatus | str] = (),
        tag: Mapping[str, str] | None = None,
        page_size: int = 100,
    ) -> Iterator[JobSummary]:
        """Every job that matches, newest first, page after page."""
        cursor = None
        while True:
            page = self.list_jobs(status=status, tag=tag, limit=page_size, cursor=cursor)
            yield from page.items
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    def get_job(self, job_id: str) -> JobView:
        """The job: status, spec, transitions, progress, best epoch, result, error."""
        return self._call(calls.get_job(job_id))

    def cancel(self, job_id: str) -> JobView:
        """Cancel the job; the answer says whether it is ``cancelled`` or still ``cancelling``."""
        return self._call(calls.cancel_job(job_id))

    def metrics(
        self, job_id: str, *, after_epoch: int = 0, limit: int | None = None, wait: int = 0
    ) -> MetricsPage:
        """The epoch records after ``after_epoch``; with ``wait``, a long poll of up to that many seconds."""
        return self._call(calls.job_metrics(job_id, after_epoch, limit, wait))

    def events(self, job_id: str, *, after_epoch: int = 0) -> Iterator[JobEvent]:
        """The job's epochs and status changes as they happen, until the service ends the stream
        after the final state. A dropped stream is resumed after the last epoch received."""
        tries = Tries(self.retry, repeat_safe=True)
        last_epoch, ended = after_epoch, False
        while not ended:
            try:
                with self._stream(calls.job_events(job_id, last_epoch)) as response:
                    decoder = EventDecoder()
                    for line in response.iter_lines():
                        event = decoder.feed(line)
                        if event is None:
                            continue
                        tries.reset()
                        if isinstance(event, EpochEvent):
                            last_epoch = event.epoch
                        ended = isinstance(event, StateEvent) and event.status.is_terminal()
                        yield event
                if ended:
                    return
                time.sleep(self.retry.backoff_seconds)  # ended early (a proxy?): resume
            except httpx.TransportError as error:
                time.sleep(tries.wait_after_error(error, self.url))

    def download_model(self, job_id: str, path: str | Path) -> Path:
        """Save the trained model (``.keras``) at ``path``; 409 ``ApiError`` while there is none."""
        target = PartialFile(path)
        try:
            with self._stream(calls.job_model(job_id)) as response:
                target.write(response.iter_bytes())
            return target.commit()
        except httpx.TransportError as error:  # the connection dropped mid-file
            raise unreachable(error, self.url) from error
        finally:
            target.discard()

    def presets(self) -> list[PresetView]:
        """The case study's variants with their full specs."""
        return self._call(calls.list_presets())

    # Webhooks

    def deliveries(self, job_id: str) -> DeliveryLog:
        """The job's webhook deliveries, oldest first, with each attempt."""
        return self._call(calls.job_deliveries(job_id))

    def webhook_secret(self) -> WebhookSecret:
        """The tenant's webhook signing secret (made on first use)."""
        return self._call(calls.webhook_secret())

    def rotate_webhook_secret(self) -> WebhookSecret:
        """Replace the tenant's webhook signing secret; later requests are signed with the new one."""
        return self._call(calls.rotate_webhook_secret())

    # Studies

    def create_study(self, request: StudyLike) -> StudyView:
        """Start a study: named variants, a grid, or the ``article`` preset over a base spec."""
        return self._call(calls.create_study(request))

    def list_studies(self, *, limit: int | None = None, cursor: str | None = None) -> StudyPage:
        """One page of studies, newest first."""
        return self._call(calls.list_studies(limit, cursor))

    def get_study(self, study_id: str) -> StudyView:
        """The study: status, job counts and leaderboard."""
        return self._call(calls.get_study(study_id))

    def cancel_study(self, study_id: str) -> StudyView:
        """Cancel every job of the study that has not ended."""
        return self._call(calls.cancel_study(study_id))

    def study_report(self, study_id: str, *, format: ReportFormat = "markdown") -> str:
        """The leaderboard as CSV or Markdown (with a search's sections), or a search's trials as CSV
        (``trials-csv``)."""
        return self._call(calls.study_report(study_id, format))

    def study_curves(self, study_id: str) -> bytes:
        """The variants' learning curves as a PNG image."""
        return self._call(calls.study_curves(study_id))

    def search_progress(self, study_id: str) -> bytes:
        """A search's best value against the epochs it spent, as a PNG image."""
        return self._call(calls.search_progress(study_id))

    # Datasets

    def upload_dataset(
        self, paths: Sequence[str | Path], *, name: str | None = None, convert: bool = False
    ) -> DatasetInfo:
        """Upload an ``.npz``, a ``.zip`` or the four IDX files; its id names it in a spec."""
        return self._call(calls.upload_dataset(read_files(paths), name, convert))

    def list_datasets(self) -> list[DatasetInfo]:
        """The tenant's datasets, newest first."""
        return self._call(calls.list_datasets())

    def get_dataset(self, dataset_id: str) -> DatasetInfo:
        """Sample counts, classes and shape of a dataset."""
        return self._call(calls.get_dataset(dataset_id))

    def delete_dataset(self, dataset_id: str) -> None:
        """Delete a dataset (409 while a queued or running job uses it)."""
        self._call(calls.delete_dataset(dataset_id))

    # Service

    def health(self) -> Health:
        """Liveness of the API."""
        return self._call(calls.health())

    def workers(self) -> WorkerList:
        """The live workers: queues, backend, device, and the caller's job each one trains."""
        return self._call(calls.list_workers())

    def queue(self) -> QueueSummary:
        """Per queue: its slots, and the caller's jobs waiting and released at each priority, its
        waiting ones in the order they start."""
        return self._call(calls.queue_summary())

    def ready(self, operator_token: str | None = None) -> Readiness:
        """Readiness: whether Redis answers, and live workers per queue (a 503 is an answer here).
        It takes the service's operator token (``OPERATOR_TOKEN``), not an API key, unless the
        service runs without authentication."""
        return self._call(calls.readiness(operator_token))

    # Sending

    def _call(self, call: Call[T]) -> T:
        response = self._send(call, stream=False)
        return call.read(response)

    @contextmanager
    def _stream(self, call: Call[Any]) -> Iterator[httpx.Response]:
        response = self._send(call, stream=True)
        try:
            yield response
        finally:
            response.close()

    def _send(self, call: Call[Any], *, stream: bool) -> httpx.Response:
        """Send ``call``, retrying as the policy allows; an error answer raises ``ApiError``."""
        tries = Tries(self.retry, call.repeat_safe)
        while True:
            try:
                response = self._http.send(self._http.build_request(**request_arguments(call)), stream=stream)
            except httpx.TransportError as error:
                time.sleep(tries.wait_after_error(error, self.url))
                continue
            if response.is_success or response.status_code in call.answers:
                return response
            self._read_error(response)
            delay = tries.wait_after_status(response)
            if delay is None:
                raise ApiError.from_response(response)
            time.sleep(delay)

    @staticmethod
    def _read_error(response: httpx.Response) -> None:
        try:
            response.read()
        except httpx.TransportError:
            pass  # the status alone then says what went wrong
        finally:
            response.close()
