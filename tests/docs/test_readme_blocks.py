"""Which Markdown blocks the docs tests run, and what they expect of them."""

from tests.docs.readme_blocks import ExpectedProblem, documented_keys, shell_examples

DOCUMENT = """\
Start it:

```sh
kjobs up
```

Submit:

```sh
JOB=$(curl -s -X POST 127.0.0.1:8000/v1/jobs \\
  | python3 -c 'import json, sys; print(json.load(sys.stdin)["id"])')
NAME=$(curl -s 127.0.0.1:8000/v1/jobs/$JOB | python3 -c 'import json, sys; print(json.load(sys.stdin)["a"])')
```

<!-- not-run -->

```bash
curl -s 127.0.0.1:8000/v1/jobs/$JOB/events
```

```bash
curl -s -o model.keras 127.0.0.1:8000/v1/jobs/$JOB/model
```

A bad spec:

```sh
curl -s -X POST 127.0.0.1:8000/v1/jobs -d '{"training": {"epochs": 0}}'
```

```json
{"status": 422, "errors": [{"field": "training.epochs", "message": "..."}]}
```

```python
curl = "not shell"
```

A poll answers `{"records": [{"epoch": 1}], "last_epoch": N, "status": ...}`.
"""


def test_only_shell_blocks_with_curl_and_no_marker_run() -> None:
    lines = [example.line for example in shell_examples(DOCUMENT)]
    assert lines == [9, 21, 27]


def test_assignments_and_the_ids_read_from_an_answer_are_known() -> None:
    submit = shell_examples(DOCUMENT)[0]
    assert submit.assigned == ("JOB", "NAME")
    assert submit.id_holders == ("JOB",)


def test_downloads_are_known() -> None:
    assert shell_examples(DOCUMENT)[1].output_files == ("model.keras",)


def test_a_block_followed_by_a_problem_expects_its_status_and_fields() -> None:
    examples = shell_examples(DOCUMENT)
    assert examples[2].problem == ExpectedProblem(422, ("training.epochs",))
    assert all(example.problem is None for example in examples[:2])


def test_a_problem_after_prose_belongs_to_no_block() -> None:
    document = DOCUMENT.replace("```json", "Which answers:\n\n```json")
    assert all(example.problem is None for example in shell_examples(document))


def test_documented_keys_are_the_top_level_keys_of_an_inline_answer() -> None:
    assert documented_keys(DOCUMENT, "records") == ("records", "last_epoch", "status")
