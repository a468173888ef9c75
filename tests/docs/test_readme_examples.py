"""README's curl examples, pasted in order against the suite's API and worker, so the docs cannot rot.

Which blocks run: every ```sh or ```bash block that contains ``curl``, unless the line before
its fence is ``<!-- not-run -->``; a block followed directly by a ```json problem document is
expected to answer that status (see tests/docs/readme_blocks.py). The examples run in README's
order in one reader's environment: variables carry from block to block, ``127.0.0.1:8000``
becomes the suite's API, ``KJOBS_API_KEY`` is a fresh key, and every curl fails on an HTTP error.
"""

import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from shared.models.jobs import JOB_ID_PATTERN
from tests.docs.readme_blocks import ShellExample, documented_keys, shell_examples
from tests.docs.shell_runner import ExampleRun, run_example

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("worker", "reader_client")]

README = Path(__file__).resolve().parents[2] / "README.md"
# The first keys of the answers README shows inline in its prose (the metrics poll, /readyz).
DOCUMENTED_ANSWERS = ("records", "ready")
JSON_START = re.compile(r"^(?:data: )?([{\[])", re.MULTILINE)


def test_readme_curl_examples_work_as_pasted(
    api_url: str, reader_dir: Path, reader_env: dict[str, str]
) -> None:
    markdown = README.read_text()
    examples = shell_examples(markdown)
    assert len(examples) >= 5, "README's curl examples were not found"
    documents: list[Any] = []
    for example in examples:
        run = run_example(example, urlsplit(api_url).netloc, reader_dir, reader_env)
        assert run.returncode == 0, run.describe(example)
        answers = json_documents(run.stdout, run.describe(example))
        if example.problem:
            check_problem(example, run, answers)
        documents += answers
        check_variables(example, run)
        check_output_files(example, run, reader_dir)
    for first_key in DOCUMENTED_ANSWERS:
        check_documented_shape(documents, first_key, documented_keys(markdown, first_key))


def json_documents(output: str, context: str) -> list[Any]:
    """The JSON objects and arrays of ``output``: each that opens a line or an event's ``data:``.

    Those right after one count too: curl prints its answers back to back, without newlines.
    """
    documents: list[Any] = []
    start = JSON_START.search(output)
    while start is not None:
        position = start.start(1)
        while output.startswith(("{", "["), position):
            document, position = decode_at(output, position, context)
            documents.append(document)
        start = JSON_START.search(output, position)
    return documents


def decode_at(output: str, position: int, context: str) -> tuple[Any, int]:
    """The JSON value at ``position`` of ``output``, and where it ends."""
    try:
        document, end = json.JSONDecoder().raw_decode(output, position)
    except json.JSONDecodeError as error:
        raise AssertionError(f"an answer is not JSON ({error}): {context}") from error
    return document, end


def check_problem(example: ShellExample, run: ExampleRun, answers: list[Any]) -> None:
    """The example answers the status README shows after it, naming the same fields."""
    assert example.problem is not None
    assert run.statuses == (example.problem.status,), run.describe(example)
    (problem,) = answers
    assert problem["status"] == example.problem.status, run.describe(example)
    fields = tuple(error["field"] for error in problem["errors"])
    assert fields == example.problem.fields, run.describe(example)


def check_variables(example: ShellExample, run: ExampleRun) -> None:
    """Each variable the example sets is set, and those read from an answer's ``id`` hold ids."""
    for name in example.assigned:
        assert run.variables.get(name), f"{name} is empty: {run.describe(example)}"
    for name in example.id_holders:
        assert re.fullmatch(JOB_ID_PATTERN.strip("^$"), run.variables[name]), run.describe(example)


def check_output_files(example: ShellExample, run: ExampleRun, folder: Path) -> None:
    """The files the example downloads (``-o NAME``) are there and not empty."""
    for name in example.output_files:
        path = folder / name
        assert path.is_file(), f"{name} missing: {run.describe(example)}"
        assert path.stat().st_size > 0, f"{name} is empty: {run.describe(example)}"


def check_documented_shape(documents: list[Any], first_key: str, keys: tuple[str, ...]) -> None:
    """Some answer starts like README's inline example, and every such answer has all its keys."""
    matching = [document for document in documents if isinstance(document, dict) and first_key in document]
    assert matching, f"no example's answer has {first_key!r}, as README's example answer does"
    for document in matching:
        assert set(keys) <= set(document), f"README shows {keys}, the API answered {sorted(document)}"
