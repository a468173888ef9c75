"""Following a job with the client: its event stream, long poll and model, with a real worker."""

import asyncio
import zipfile
from pathlib import Path

import pytest

from client import AsyncKJobsClient, EpochEvent, JobEvent, JobStatus, KJobsClient, StateEvent
from tests.helpers import tiny_spec

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("worker")]


def epochs_of(events: list[JobEvent]) -> list[int]:
    return [event.epoch for event in events if isinstance(event, EpochEvent)]


def test_the_event_iterator_yields_every_epoch_once_in_order(kjobs: KJobsClient, tmp_path: Path) -> None:
    job = kjobs.submit(tiny_spec(training={"epochs": 3}))
    events = list(kjobs.events(job.id))
    assert epochs_of(events) == [1, 2, 3]
    assert events[-1] == StateEvent(status=JobStatus.SUCCEEDED, last_epoch=3)
    assert all(event.record.loss > 0 for event in events if isinstance(event, EpochEvent))
    resumed = list(kjobs.events(job.id, after_epoch=2))
    assert epochs_of(resumed) == [3]
    page = kjobs.metrics(job.id, after_epoch=1)
    assert ([r.epoch for r in page.records], page.last_epoch, page.has_more) == ([2, 3], 3, False)
    saved = kjobs.download_model(job.id, tmp_path / "model.keras")
    assert zipfile.is_zipfile(saved), "a .keras file is a zip archive"
    assert list(tmp_path.iterdir()) == [saved], "no partial file is left behind"


def test_the_async_event_iterator_yields_every_epoch_once_in_order(
    api_url: str, api_key: str, tmp_path: Path
) -> None:
    async def follow() -> tuple[list[JobEvent], int, Path]:
        async with AsyncKJobsClient(api_url, api_key) as kjobs:
            job = await kjobs.submit(tiny_spec(training={"epochs": 2}))
            events = [event async for event in kjobs.events(job.id)]
            waited = await kjobs.metrics(job.id, after_epoch=2, wait=5)
            path = await kjobs.download_model(job.id, tmp_path / "model.keras")
            return events, waited.last_epoch, path

    events, last_epoch, path = asyncio.run(follow())
    assert epochs_of(events) == [1, 2]
    final = events[-1]
    assert isinstance(final, StateEvent)
    assert final.status == "succeeded"
    assert last_epoch == 2
    assert zipfile.is_zipfile(path)
