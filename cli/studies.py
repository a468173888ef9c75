"""``kjobs study``: start, list, show, report and cancel studies of a running service."""

from pathlib import Path
from typing import Annotated, Literal

import typer

from cli.connection import ApiKeyOption, UrlOption, connect
from cli.output import console, print_fields, print_rows
from cli.search_view import print_search_tables, search_fields
from cli.spec_input import read_document
from client import StudyView

app = typer.Typer(
    help="Studies: several variants of one spec, or a search of a space, trained as jobs and ranked.",
    no_args_is_help=True,
)

StudyIdArgument = Annotated[str, typer.Argument(help="The study's id.", show_default=False)]


@app.command()
def submit(
    request_file: Annotated[
        Path,
        typer.Argument(help="A JSON or YAML study request (base, variants or grid...).", show_default=False),
    ],
    url: UrlOption = None,
    api_key: ApiKeyOption = None,
) -> None:
    """Start a study from a file; print its id."""
    body = read_document(request_file, what="request")
    with connect(url, api_key) as client:
        study = client.create_study(body)
    console.print(study.id, markup=False, highlight=False)


@app.command("ls")
def list_studies(
    limit: Annotated[int, typer.Option(min=1, max=50, help="Most studies to list.")] = 10,
    url: UrlOption = None,
    api_key: ApiKeyOption = None,
) -> None:
    """List studies, newest first."""
    with connect(url, api_key) as client:
        page = client.list_studies(limit=limit)
    rows = [(study.id, study.name, study.status, len(study.jobs), counts_text(study)) for study in page.items]
    print_rows(("id", "name", "status", "variants", "jobs"), rows)


@app.command()
def show(study_id: StudyIdArgument, url: UrlOption = None, api_key: ApiKeyOption = None) -> None:
    """Show a study: its status, its jobs and the leaderboard; a search's budgets, best trial,
    importances and trials."""
    with connect(url, api_key) as client:
        study = client.get_study(study_id)
    objective = f"{study.objective.metric} ({study.objective.mode})"
    fields: list[tuple[str, object]] = [
        ("id", study.id),
        ("name", study.name),
        ("status", study.status),
        ("objective", objective),
        ("jobs", counts_text(study)),
    ]
    if study.search is not None:
        print_fields(fields + search_fields(study.search, study.objective))
        print_search_tables(study.search)
        return
    print_fields(fields)
    rows = [
        (r.rank, r.variant, r.status, r.best_value, r.best_epoch, r.test_accuracy, r.gap_at_best, r.job_id)
        for r in study.leaderboard
    ]
    columns = ("rank", "variant", "status", "best", "best_epoch", "test_accuracy", "gap", "job")
    print_rows(columns, rows, title="Leaderboard", whole=("job",))


def counts_text(study: StudyView) -> str:
    """``2 succeeded, 1 running``."""
    return ", ".join(f"{count} {status}" for status, count in sorted(study.counts.items()))


@app.command()
def report(
    study_id: StudyIdArgument,
    format: Annotated[
        Literal["markdown", "csv", "trials-csv"],
        typer.Option(help="markdown (a search's sections too), csv (the leaderboard) or trials-csv."),
    ] = "markdown",
    url: UrlOption = None,
    api_key: ApiKeyOption = None,
) -> None:
    """Print the leaderboard as Markdown or CSV, or a search's trials as CSV."""
    with connect(url, api_key) as client:
        text = client.study_report(study_id, format=format)
    console.out(text, end="", highlight=False)


@app.command()
def curves(
    study_id: StudyIdArgument,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="[default: ID.png]")] = None,
    url: UrlOption = None,
    api_key: ApiKeyOption = None,
) -> None:
    """Save the variants' learning curves as a PNG image."""
    with connect(url, api_key) as client:
        image = client.study_curves(study_id)
    path = output or Path(f"{study_id}.png")
    path.write_bytes(image)
    console.print(str(path), markup=False, highlight=False)


@app.command()
def progress(
    study_id: StudyIdArgument,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="[default: ID-progress.png]")] = None,
    url: UrlOption = None,
    api_key: ApiKeyOption = None,
) -> None:
    """Save a search's best value against the epochs it spent as a PNG image."""
    with connect(url, api_key) as client:
        image = client.search_progress(study_id)
    path = output or Path(f"{study_id}-progress.png")
    path.write_bytes(image)
    console.print(str(path), markup=False, highlight=False)


@app.command()
def cancel(study_id: StudyIdArgument, url: UrlOption = None, api_key: ApiKeyOption = None) -> None:
    """Cancel every job of a study that has not ended."""
    with connect(url, api_key) as client:
        study = client.cancel_study(study_id)
    console.print(f"{study.id} {counts_text(study)}", markup=False, highlight=False)
