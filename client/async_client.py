"""``AsyncKJobsClient``: the REST API of keras-jobs from asyncio code, call for call like
``KJobsClient``."""

import asyncio
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
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


class AsyncKJobsClient:
    """An asyncio client of one keras-jobs service; ``async with`` it, or ``await aclose()``.

    Same arguments, defaults, errors and retries as ``KJobsClient``.
    """

    def __init__(
        self,
        url: str | None = None,
        api_key: str | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        retry: RetryPolicy | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.url = resolve_url(url)
        self.retry = retry or RetryPolicy()
        self._http = httpx.AsyncClient(
            base_url=self.url, timeout=timeout, transport=transport, headers=default_headers(api_key, headers)
        )

    async def aclose(self) -> None:
        """Close the connections."""
        await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        await self.aclose()

    # Jobs

    async def submit(self, spec: SpecLike, *, idempotency_key: str | None = None) -> JobView:
        """Submit a job; safe to retry, it is created once (see ``KJobsClient.submit``)."""
        return await self._call(calls.submit_job(spec, idempotency_key))

    async def list_jobs(
        self,
        *,
        status: Sequence[JobStatus | str] = (),
        tag: Mapping[str, str] | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> JobPage:
        """One page of jobs, newest first."""
        return await self._call(calls.list_jobs(status, tag, limit, cursor))

    async def iter_jobs(
        self,
        *,
        status: Sequence[JobStatus | str] = (),
        tag: Mapping[str, str] | None = None,
        page_size: int = 100,
    ) -> AsyncIterator[JobSummary]:
        """Every job that matches, newest first, page after page."""
        cursor = None
        while True:
            page = await self.list_jobs(status=status, tag=tag, limit=page_size, cursor=cursor)
            for item in page.items:
                yield item
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    async def get_job(self, job_id: str) -> JobView:
        """The job in full."""
        return await self._call(calls.get_job(job_id))

    async def cancel(self, job_id: str) -> JobView:
        """Cancel the job."""
        return await self._call(calls.cancel_job(job_id))

    async def metrics(
        self, job_id: str, *, after_epoch: int = 0, limit: int | None = None, wait: int = 0
    ) -> MetricsPage:
        """The epoch records after ``after_epoch``; with ``wait``, a long poll."""
        return await self._call(calls.job_metrics(job_id, after_epoch, limit, wait))

    async def events(self, job_id: str, *, after_epoch: int = 0) -> AsyncIterator[JobEvent]:
        """The job's epochs and status changes as they happen; resumed after a dropped stream."""
        tries = Tries(self.retry, repeat_safe=True)
        last_epoch, ended = after_epoch, False
        while not ended:
            try:
                async with self._stream(calls.job_events(job_id, last_epoch)) as response:
                    decoder = EventDecoder()
                    async for line in response.aiter_lines():
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
                await asyncio.sleep(self.retry.backoff_seconds)  # ended early (a proxy?): resume
            except httpx.TransportError as error:
                await asyncio.sleep(tries.wait_after_error(error, self.url))

    async def download_model(self, job_id: str, path: str | Path) -> Path:
        """Save the trained model (``.keras``) at ``path``."""
        target = PartialFile(path)
        try:
            async with self._stream(calls.job_model(job_id)) as response:
                with target.open() as out:
                    async for chunk in response.aiter_bytes():
                        out.write(chunk)
            return target.commit()
        except httpx.TransportError as error:  # the connection dropped mid-file
            raise unreachable(error, self.url) from error
        finally:
            target.discard()

    async def presets(self) -> list[PresetView]:
        """The case study's variants with their full specs."""
        return await self._call(calls.list_presets())

    # Webhooks

    async def deliveries(self, job_id: str) -> DeliveryLog:
        """The job's webhook deliveries, oldest first, with each attempt."""
        return await self._call(calls.job_deliveries(job_id))

    async def webhook_secret(self) -> WebhookSecret:
        """The tenant's webhook signing secret (made on first use)."""
        return await self._call(calls.webhook_secret())

    async def rotate_webhook_secret(self) -> WebhookSecret:
        """Replace the tenant's webhook signing secret; later requests are signed with the new one."""
        return await self._call(calls.rotate_webhook_secret())

    # Studies

    async def create_study(self, request: StudyLike) -> StudyView:
        """Start a study."""
        return await self._call(calls.create_study(request))

    async def list_studies(self, *, limit: int | None = None, cursor: str | None = None) -> StudyPage:
        """One page of studies, newest first."""
        return await self._call(calls.list_studies(limit, cursor))

    async def get_study(self, study_id: str) -> StudyView:
        """The study: status, job counts and leaderboard."""
        return await self._call(calls.get_study(study_id))

    async def cancel_study(self, study_id: str) -> StudyView:
        """Cancel every job of the study that has not ended."""
        return await self._call(calls.cancel_study(study_id))

    async def study_report(self, study_id: str, *, format: ReportFormat = "markdown") -> str:
        """The leaderboard as CSV or Markdown (with a search's sections), or a search's trials as CSV
        (``trials-csv``)."""
        return await self._call(calls.study_report(study_id, format))

    async def study_curves(self, study_id: str) -> bytes:
        """The variants' learning curves as a PNG image."""
        return await self._call(calls.study_curves(study_id))

    async def search_progress(self, study_id: str) -> bytes:
        """A search's best value against the epochs it spent, as a PNG image."""
        return await self._call(calls.search_progress(study_id))

    # Datasets

    async def upload_dataset(
        self, paths: Sequence[str | Path], *, name: str | None = None, convert: bool = False
    ) -> DatasetInfo:
        """Upload an ``.npz``, a ``.zip`` or the four IDX files."""
        return await self._call(calls.upload_dataset(read_files(paths), name, convert))

    async def list_datasets(self) -> list[DatasetInfo]:
        """The tenant's datasets, newest first."""
        return await self._call(calls.list_datasets())

    async def get_dataset(self, dataset_id: str) -> DatasetInfo:
        """Sample counts, classes and shape of a dataset."""
        return await self._call(calls.get_dataset(dataset_id))

    async def delete_dataset(self, dataset_id: str) -> None:
        """Delete a dataset."""
        await self._call(calls.delete_dataset(dataset_id))

    # Service

    async def health(self) -> Health:
        """Liveness of the API."""
        return await self._call(calls.health())

    async def workers(self) -> WorkerList:
        """The live workers: queues, backend, device, and the caller's job each one trains."""
        return await self._call(calls.list_workers())

    async def queue(self) -> QueueSummary:
        """Per queue: its slots, and the caller's jobs waiting and released at each priority, its
        waiting ones in the order they start."""
        return await self._call(calls.queue_summary())

    async def ready(self, operator_token: str | None = None) -> Readiness:
        """Readiness (a 503 is an answer here), with the service's operator token."""
        return await self._call(calls.readiness(operator_token))

    # Sending

    async def _call(self, call: Call[T]) -> T:
        response = await self._send(call, stream=False)
        return call.read(response)

    @asynccontextmanager
    async def _stream(self, call: Call[Any]) -> AsyncIterator[httpx.Response]:
        response = await self._send(call, stream=True)
        try:
            yield response
        finally:
            await response.aclose()

    async def _send(self, call: Call[Any], *, stream: bool) -> httpx.Response:
        """Send ``call``, retrying as the policy allows; an error answer raises ``ApiError``."""
        tries = Tries(self.retry, call.repeat_safe)
        while True:
            try:
                request = self._http.build_request(**request_arguments(call))
                response = await self._http.send(request, stream=stream)
            except httpx.TransportError as error:
                await asyncio.sleep(tries.wait_after_error(error, self.url))
                continue
            if response.is_success or response.status_code in call.answers:
                return response
            await self._read_error(response)
            delay = tries.wait_after_status(response)
            if delay is None:
                raise ApiError.from_response(response)
            await asyncio.sleep(delay)

    @staticmethod
    async def _read_error(response: httpx.Response) -> None:
        try:
            await response.aread()
        except httpx.TransportError:
            pass  # the status alone then says what went wrong
        finally:
            await response.aclose()
