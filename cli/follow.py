"""Following a job to its end: its event stream (a long poll when the stream cannot go on), a
progress bar and a live table of epochs at a terminal, plain lines in a pipe, then the result."""

import logging
from typing import Protocol

from rich.console import Group
from rich.live import Live
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from cli.output import cell, console, err_console, plain_line, print_fields
from client import EpochEvent, JobStatus, JobView, KJobsClient, ServiceUnreachable
from shared.models.jobs import EpochRecord

log = logging.getLogger(__name__)

LONG_POLL_SECONDS = 30
EPOCH_COLUMNS = ("epoch", "loss", "accuracy", "val_loss", "val_accuracy", "seconds")
REGRESSION_COLUMNS = ("epoch", "loss", "mae", "val_loss", "val_mae", "seconds")


def epoch_columns(job: JobView) -> tuple[str, ...]:
    """The epoch table's columns: accuracies for classification, MAEs for regression."""
    return (
        REGRESSION_COLUMNS if job.network is not None and job.network.task == "regression" else EPOCH_COLUMNS
    )


def epoch_cells(record: EpochRecord) -> list[str]:
    """The cells of one epoch's row (MAE in the accuracy columns for regression)."""
    regression = record.mae is not None
    values = (
        record.loss,
        record.mae if regression else record.accuracy,
        record.val_loss,
        record.val_mae if regression else record.val_accuracy,
    )
    return [str(record.epoch), *(cell(value) for value in values), cell(record.epoch_seconds, 1)]


class JobWatcher(Protocol):
    """Shows what happens to a followed job."""

    def epoch(self, record: EpochRecord) -> None: ...
    def status(self, status: JobStatus) -> None: ...


class LiveWatcher:
    """A progress bar over the epochs above a table that grows by a row per epoch."""

    def __init__(self, job: JobView) -> None:
        self.table = Table(*epoch_columns(job))
        self.progress = Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()
        )
        self.task = self.progress.add_task(job.status.value, total=job.progress.epochs)
        self.live = Live(Group(self.progress, self.table), console=console, refresh_per_second=4)

    def epoch(self, record: EpochRecord) -> None:
        self.table.add_row(*epoch_cells(record))
        self.progress.update(self.task, completed=record.epoch)

    def status(self, status: JobStatus) -> None:
        self.progress.update(self.task, description=status.value)


class PlainWatcher:
    """Tab-separated epoch rows under a header, and status changes as lines of their own."""

    def __init__(self) -> None:
        self.header_shown = False
        self.last_status: JobStatus | None = None

    def epoch(self, record: EpochRecord) -> None:
        if not self.header_shown:
            self.header_shown = True
            plain_line(*(REGRESSION_COLUMNS if record.mae is not None else EPOCH_COLUMNS))
        plain_line(*epoch_cells(record))

    def status(self, status: JobStatus) -> None:
        if status != self.last_status:
            self.last_status = status
            plain_line(f"status: {status.value}")


def follow(client: KJobsClient, job_id: str) -> JobView:
    """Show the job's epochs and status changes until it ends, then its result; returns the job."""
    job = client.get_job(job_id)
    if console.is_terminal:
        watcher = LiveWatcher(job)
        with watcher.live:
            watch(client, job_id, watcher)
    else:
        watch(client, job_id, PlainWatcher())
    job = client.get_job(job_id)
    show_result(job)
    return job


def watch(client: KJobsClient, job_id: str, watcher: JobWatcher) -> None:
    """Feed ``watcher`` from the event stream; if it cannot go on, long-poll from the last epoch."""
    last_epoch = 0
    try:
        for event in client.events(job_id):
            if isinstance(event, EpochEvent):
                watcher.epoch(event.record)
                last_epoch = event.epoch
            else:
                watcher.status(event.status)
    except ServiceUnreachable as error:
        err_console.print(f"the event stream broke off ({error}); polling instead", highlight=False)
        long_poll(client, job_id, watcher, last_epoch)


def long_poll(client: KJobsClient, job_id: str, watcher: JobWatcher, after_epoch: int) -> None:
    """Feed ``watcher`` from long polls of the metrics after ``after_epoch`` until the job ends."""
    while True:
        page = client.metrics(job_id, after_epoch=after_epoch, wait=LONG_POLL_SECONDS)
        for record in page.records:
            watcher.epoch(record)
        after_epoch = page.last_epoch
        watcher.status(page.status)
        if page.status.is_terminal() and not page.has_more:
            return


def result_fields(job: JobView) -> list[tuple[str, object]]:
    """The test scores of the job's task: accuracy for classes, MAE, RMSE and R² for regression."""
    result = job.result
    if result is None:
        return [("test accuracy", None), ("test loss", None)]
    if result.test_accuracy is None and result.test_mae is not None:
        scores = [("test MAE", result.test_mae), ("test RMSE", result.test_rmse), ("test R²", result.test_r2)]
    else:
        scores = [("test accuracy", result.test_accuracy)]
    return [*scores, ("test loss", result.test_loss)]


def show_result(job: JobView) -> None:
    """How the job ended: status and reason, best epoch, test metrics or error."""
    pairs: list[tuple[str, object]] = [
        ("job", job.id),
        ("status", job.status),
        ("stop reason", job.stop_reason),
    ]
    if job.best is not None:
        pairs.append(("best epoch", f"{job.best.epoch} ({job.best.monitor} {job.best.value:.4f})"))
    if job.result is not None:
        pairs += [
            ("stopped epoch", job.result.stopped_epoch),
            *result_fields(job),
        ]
    if job.error is not None:
        pairs.append(("error", f"{job.error.type}: {job.error.message}"))
    if job.has_model:
        pairs.append(("model", f"kjobs download {job.id}"))
    print_fields(pairs)
