"""Printing for people at a terminal, and plain text for pipes: no colour, no box drawing."""

import sys
from collections.abc import Sequence

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from client import ApiError

# Ids and paths stay whole when the output goes to a file (where Rich assumes 80 columns).
console = Console(soft_wrap=True)
err_console = Console(stderr=True, soft_wrap=True)


def cell(value: object, digits: int = 4) -> str:
    """A value as a table cell: floats rounded, absent values as ``-``."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(getattr(value, "value", value))


def print_rows(columns: Sequence[str], rows: Sequence[Sequence[object]], title: str | None = None) -> None:
    """A table at a terminal; tab-separated lines under a header line otherwise."""
    if not console.is_terminal:
        plain_line(*columns)
        for row in rows:
            plain_line(*(cell(value) for value in row))
        return
    table = Table(*columns, title=title)
    for row in rows:
        table.add_row(*(escape(cell(value)) for value in row))
    console.print(table)


def plain_line(*cells: str) -> None:
    """Cells joined by tabs on a line of stdout, as they are (Rich would expand the tabs)."""
    sys.stdout.write("\t".join(cells) + "\n")
    sys.stdout.flush()


def print_fields(pairs: Sequence[tuple[str, object]]) -> None:
    """``name  value`` lines, names aligned."""
    width = max((len(name) for name, _ in pairs), default=0)
    for name, value in pairs:
        console.print(f"[bold]{name:<{width}}[/]  {escape(cell(value))}", highlight=False)


def print_error(message: str) -> None:
    """An error line on stderr."""
    err_console.print(f"[bold red]error:[/] {escape(message)}", highlight=False)


def print_problem(error: ApiError) -> None:
    """The service's problem document on stderr: status and title, detail or each field's message."""
    headline = f"{error.status} {error.title}"
    if not error.errors:
        print_error(f"{headline}: {error.detail}" if error.detail else headline)
        return
    print_error(headline)
    for issue in error.errors:
        err_console.print(f"  {escape(issue.field)}: {escape(issue.message)}", highlight=False)
