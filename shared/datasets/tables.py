"""A feature table in CSV: a header row, one column of labels (named by the uploader), and
numeric features in every other column. Every cell is checked; the first bad ones are named by
their row (the file's line number) and column."""

import csv
import io
import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

MAX_PROBLEMS = 10


class TableError(ValueError):
    """A table that cannot be read; the message names the rows and columns at fault."""


@dataclass(frozen=True)
class Table:
    features: npt.NDArray[np.float32]
    labels: npt.NDArray[np.generic]
    """Integers (classes), floats (targets) or strings (class names), as the column holds."""
    columns: list[str]


def read_table(data: bytes, name: str, label_column: str) -> Table:
    """The table in ``data`` (UTF-8 CSV), its ``label_column`` as the labels."""
    try:
        rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    except (UnicodeDecodeError, csv.Error) as exc:
        raise TableError(f"{name} cannot be read ({exc})") from None
    if len(rows) < 2:
        raise TableError(f"{name} needs a header row and at least one row of data")
    header = [cell.strip() for cell in rows[0]]
    if label_column not in header:
        raise TableError(f"{name} has no column {label_column!r} (its columns: {', '.join(header[:20])})")
    label_at = header.index(label_column)
    columns = [column for index, column in enumerate(header) if index != label_at]
    if not columns:
        raise TableError(f"{name} has no feature column beside {label_column!r}")
    features, labels, problems = [], [], []
    for line, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue  # a blank line, at the end say
        if len(row) != len(header):
            problems.append(f"row {line} has {len(row)} cells, the header {len(header)}")
            continue
        values = []
        for index, cell in enumerate(row):
            if index == label_at:
                continue
            value = _number(cell)
            if value is None:
                what = "is missing" if not cell.strip() else f"is {cell.strip()[:20]!r}, not a number"
                problems.append(f"row {line} column {header[index]!r} {what}")
            values.append(value)
        label = row[label_at].strip()
        if not label:
            problems.append(f"row {line} column {label_column!r} (the label) is missing")
        features.append(values)
        labels.append(label)
        if len(problems) > MAX_PROBLEMS:
            break
    if problems:
        more = "; and more" if len(problems) > MAX_PROBLEMS else ""
        raise TableError(f"{name}: " + "; ".join(problems[:MAX_PROBLEMS]) + more)
    return Table(np.array(features, dtype=np.float32), _label_array(labels), columns)


def _number(cell: str) -> float | None:
    try:
        value = float(cell)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _label_array(labels: list[str]) -> npt.NDArray[np.generic]:
    """Integers when every label is one, floats when every label is a number, else names."""
    try:
        return np.array([int(label) for label in labels], dtype=np.int64)
    except ValueError:
        pass
    try:
        return np.array([float(label) for label in labels], dtype=np.float32)
    except ValueError:
        return np.array(labels, dtype=np.str_)
