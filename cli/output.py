"""Printing for people at a terminal, and plain text for pipes: no colour, no box drawing."""

import re
import sys
from collections.abc import Collection, Sequence

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from client import ApiError

# Ids and paths stay whole when the output goes to a file (where Rich assumes 80 columns).
console = Console(soft_wrap=True)
err_console = Console(stderr=True, soft_wrap=True)
LINE_BREAKS = re.compile(r"[\t\r\n]+")


def cell(value: object, digits: int = 4) -> str:
    """A value as a table cell: floats rounded, absent values as ``-``."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(getattr(value, "value", value))


def print_rows(
    columns: Sequence[str],
    rows: Sequence[Sequence[object]],
    title: str | None = None,
    whole: Collection[str] = (),
) -> None:
    """A table at a terminal; tab-separated lines under a header line otherwise (after an empty
    line and the title, when there is one, so that a pipe can tell one table from the next).
    The ``whole`` columns (ids) are never wrapped or cut at a terminal; the others give way."""
    texts = [[cell(value) for value in row] for row in rows]
    if not console.is_terminal:
        if title:
            plain_line()
            plain_line(title)
        plain_line(*columns)
        for row_texts in texts:
            plain_line(*row_texts)
        return
    if title:
        console.print()
    table = Table(title=title)
    for index, column in enumerate(columns):
        widest = max([len(column)] + [len(row_texts[index]) for row_texts in texts])
        table.add_column(column, no_wrap=column in whole, min_width=widest if column in whole else None)
    for row_texts in texts:
        table.add_row(*(escape(text) for text in row_texts))
    console.print(table)


def plain_line(*cells: str) -> None:
    """Cells joined by tabs on a line of stdout, as they are (Rich would expand the tabs), but
    for a tab or line break within a cell (an error's message, say), which becomes a space."""
    sys.stdout.write("\t".join(LINE_BREAKS.sub(" ", text) for text in cells) + "\n")
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
