"""``kjobs submit``, ``follow``, ``ls``, ``show``, ``metrics``, ``cancel`` and ``download``: the
jobs of a running service, through the Python client."""

import csv
import json
from pathlib import Path
from typing import Annotated, Literal

import typer

from cli import exits
from cli.connection import ApiKeyOption, UrlOption, connect
from cli.follow import follow as follow_job
from cli.follow import result_fields
from cli.output import console, err_console, print_fields, print_rows
from cli.spec_input import parse_layers, parse_tags, submission
from client import JobStatus, JobView, KJobsClient
from shared.models.jobs import EpochRecord
from shared.models.queue import QueuePlace
from shared.models.spec import Optimizer, PresetName, Priority

JobIdArgument = Annotated[str, typer.Argument(help="The job's id.", show_default=False)]
FollowOption = Annotated[
    bool,
    typer.Option("--follow", "-f", help="Follow the job to its end; the exit status tells how it ended."),
]


def submit(
    spec_file: Annotated[
        Path | None,
        typer.Argument(help="A JSON or YAML spec (or preset with overrides).", show_default=False),
    ] = None,
    preset: Annotated[PresetName | None, typer.Option(help="Start from this preset.")] = None,
    name: Annotated[str | None, typer.Option(help="A label for people.")] = None,
    tag: Annotated[list[str], typer.Option(help="A tag as key=value; repeatable.")] = [],  # noqa: B006
    dataset: Annotated[str | None, typer.Option(help="mnist, fashion_mnist or an uploaded id.")] = None,
    train_limit: Annotated[int | None, typer.Option(help="Train on the first N samples.")] = None,
    validation_split: Annotated[float | None, typer.Option(help="Share held out for validation.")] = None,
    layers: Annotated[str | None, typer.Option(help="Hidden layer units, e.g. 256,128.")] = None,
    l1: Annotated[float | None, typer.Option(help="L1 penalty on every hidden kernel.")] = None,
    l2: Annotated[float | None, typer.Option(help="L2 penalty on every hidden kernel.")] = None,
    dropout: Annotated[float | None, typer.Option(help="Dropout after each hidden layer.")] = None,
    epochs: Annotated[int | None, typer.Option(help="Epochs to train.")] = None,
    batch_size: Annotated[int | None, typer.Option(help="Samples per step.")] = None,
    optimizer: Annotated[Optimizer | None, typer.Option(help="The optimizer.")] = None,
    learning_rate: Annotated[float | None, typer.Option(help="The optimizer's learning rate.")] = None,
    seed: Annotated[int | None, typer.Option(help="Seed of weights, split and shuffling.")] = None,
    queue: Annotated[str | None, typer.Option(help="cpu or gpu workers.")] = None,
    priority: Annotated[Priority | None, typer.Option(help="high, normal or low.")] = None,
    follow: FollowOption = False,
    url: UrlOption = None,
    api_key: ApiKeyOption = None,
) -> None:
    """Submit a job from a spec file, a preset and/or flags (flags win); print its id."""
    overrides = {
        "name": name,
        "tags": parse_tags(tag) or None,
        "dataset.name": dataset,
        "dataset.train_limit": train_limit,
        "dataset.validation_split": validation_split,
        "model.hidden_layers": parse_layers(layers) if layers else None,
        "regularization.l1": l1,
        "regularization.l2": l2,
        "regularization.dropout": dropout,
        "training.epochs": epochs,
        "training.batch_size": batch_size,
        "training.optimizer": optimizer,
        "training.learning_rate": learning_rate,
        "training.seed": seed,
        "resources.queue": queue,
        "resources.priority": priority,
    }
    body = submission(spec_file, preset, overrides)
    with connect(url, api_key) as client:
        job = client.submit(body)
        console.print(job.id, markup=False, highlight=False)
        if follow:
            raise typer.Exit(exits.for_status(follow_job(client, job.id).status))


def follow(job_id: JobIdArgument, url: UrlOption = None, api_key: ApiKeyOption = None) -> None:
    """Follow a job to its end: exit 0 if it succeeded, 1 if it failed, 3 if it was cancelled."""
    with connect(url, api_key) as client:
        raise typer.Exit(exits.for_status(follow_job(client, job_id).status))


def ls(
    status: Annotated[list[JobStatus], typer.Option(help="Only jobs in this status; repeatable.")] = [],  # noqa: B006
    tag: Annotated[list[str], typer.Option(help="Only jobs with this tag, key=value; repeatable.")] = [],  # noqa: B006
    limit: Annotated[int, typer.Option(min=1, max=100, help="Most jobs to list.")] = 20,
    cursor: Annotated[str | None, typer.Option(help="Continue after this page (its next cursor).")] = None,
    url: UrlOption = None,
    api_key: ApiKeyOption = None,
) -> None:
    """List jobs, newest first."""
    with connect(url, api_key) as client:
        page = client.list_jobs(status=status, tag=parse_tags(tag), limit=limit, cursor=cursor)
    rows = [
        (
            job.id,
            job.name,
            job.status,
            f"{job.progress.epoch}/{job.progress.epochs}",
            job.result.test_accuracy if job.result else None,
            job.created_at.isoformat(timespec="seconds"),
        )
        for job in page.items
    ]
    print_rows(("id", "name", "status", "epochs", "test_accuracy", "created"), rows)
    if page.next_cursor:
        err_console.print(f"more: kjobs ls --cursor {page.next_cursor}", markup=False, highlight=False)


def show(
    job_id: JobIdArgument,
    as_json: Annotated[bool, typer.Option("--json", help="The whole job as JSON.")] = False,
    url: UrlOption = None,
    api_key: ApiKeyOption = None,
) -> None:
    """Show a job: status, progress, best epoch, result or error."""
    with connect(url, api_key) as client:
        job = client.get_job(job_id)
    if as_json:
        console.print_json(job.model_dump_json())
        return
    print_fields(job_fields(job))


def job_fields(job: JobView) -> list[tuple[str, object]]:
    """The lines of ``kjobs show``."""
    pairs: list[tuple[str, object]] = [
        ("id", job.id),
        ("name", job.name),
        ("status", job.status),
        ("stop reason", job.stop_reason),
        ("preset", job.preset),
        ("tags", ", ".join(f"{key}={value}" for key, value in job.tags.items()) or None),
        ("progress", f"{job.progress.epoch}/{job.progress.epochs} epochs"),
        ("dataset", job.spec.dataset.name),
        ("network", job.network.text() if job.network else None),
        ("best epoch", f"{job.best.epoch} ({job.best.monitor} {job.best.value:.4f})" if job.best else None),
        *result_fields(job),
        ("error", f"{job.error.type}: {job.error.message}" if job.error else None),
        ("study", f"{job.study.id} ({job.study.variant})" if job.study else None),
        ("priority", job.spec.resources.priority),
        ("waiting", place_text(job.queue_place) if job.queue_place else None),
        ("attempt", job.attempt),
        ("created", job.created_at.isoformat(timespec="seconds")),
        ("finished", job.finished_at.isoformat(timespec="seconds") if job.finished_at else None),
        ("model", "yes" if job.has_model else "no"),
    ]
    return pairs


def place_text(place: QueuePlace) -> str:
    """A queued job's place: its position, when it waits in line, and why it waits."""
    position = f"#{place.position}: " if place.position is not None else ""
    return f"{position}{place.reason}"


def queue(url: UrlOption = None, api_key: ApiKeyOption = None) -> None:
    """Show each queue's slots, your jobs waiting and released at each priority, and your
    waiting jobs in the order they start."""
    with connect(url, api_key) as client:
        summary = client.queue()
    rows = [
        (view.queue, view.slots, counts.priority, counts.waiting, counts.released)
        for view in summary.queues
        for counts in view.priorities
    ]
    print_rows(
        ("queue", "slots", "priority", "waiting", "released"), rows, title="Your jobs by queue and priority"
    )
    waiting = [
        (view.queue, job.position, job.priority, job.id) for view in summary.queues for job in view.waiting
    ]
    if waiting:
        print_rows(("queue", "position", "priority", "id"), waiting, title="Your waiting jobs", whole=("id",))


def metrics(
    job_id: JobIdArgument,
    format: Annotated[Literal["table", "csv", "json"], typer.Option(help="table, csv or json.")] = "table",
    after_epoch: Annotated[int, typer.Option(min=0, help="Only epochs after this one.")] = 0,
    url: UrlOption = None,
    api_key: ApiKeyOption = None,
) -> None:
    """Print a job's epoch records."""
    with connect(url, api_key) as client:
        records = all_records(client, job_id, after_epoch)
    if format == "json":
        console.print_json(json.dumps([record.model_dump(mode="json") for record in records]))
    elif format == "csv":
        write_csv(records)
    else:
        regression = any(record.mae is not None for record in records)
        scores = ("mae", "val_mae") if regression else ("accuracy", "val_accuracy")
        columns = ("epoch", "loss", scores[0], "val_loss", scores[1], "gap", "seconds")
        print_rows(columns, table_rows(records, regression))


def all_records(client: KJobsClient, job_id: str, after_epoch: int) -> list[EpochRecord]:
    """Every record after ``after_epoch``, page after page."""
    records: list[EpochRecord] = []
    while True:
        page = client.metrics(job_id, after_epoch=after_epoch)
        records += page.records
        after_epoch = page.last_epoch
        if not page.has_more:
            return records


def table_rows(records: list[EpochRecord], regression: bool = False) -> list[tuple[object, ...]]:
    """Per record: epoch, loss, accuracy (MAE for regression), their validation values, gap, time."""
    return [
        (
            r.epoch,
            r.loss,
            r.mae if regression else r.accuracy,
            r.val_loss,
            r.val_mae if regression else r.val_accuracy,
            r.generalization_gap,
            r.epoch_seconds,
        )
        for r in records
    ]


def write_csv(records: list[EpochRecord]) -> None:
    """Every field of every record, a header first."""
    columns = list(EpochRecord.model_fields)
    writer = csv.writer(OutputLines(), lineterminator="\n")
    writer.writerow(columns)
    for record in records:
        values = record.model_dump(mode="json")
        writer.writerow(["" if values[column] is None else values[column] for column in columns])


class OutputLines:
    """A file-like writer onto the console, for ``csv.writer``."""

    def write(self, text: str) -> int:
        console.out(text, end="", highlight=False)
        return len(text)


def cancel(job_id: JobIdArgument, url: UrlOption = None, api_key: ApiKeyOption = None) -> None:
    """Cancel a job: a queued one at once, a running one at its next batch end."""
    with connect(url, api_key) as client:
        job = client.cancel(job_id)
    console.print(f"{job.id} {job.status.value}", markup=False, highlight=False)


def download(
    job_id: JobIdArgument,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Where to save it [default: ID.keras].")
    ] = None,
    url: UrlOption = None,
    api_key: ApiKeyOption = None,
) -> None:
    """Download a job's trained model (.keras)."""
    with connect(url, api_key) as client:
        path = client.download_model(job_id, output or Path(f"{job_id}.keras"))
    console.print(str(path), markup=False, highlight=False)


def register(app: typer.Typer) -> None:
    """Add the job commands to ``app``."""
    for command in (submit, follow, ls, show, metrics, cancel, download, queue):
        app.command()(command)
