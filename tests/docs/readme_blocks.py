"""The shell examples of a Markdown document, and which of them the docs tests run.

The rule: a fenced ```sh or ```bash block runs when it contains ``curl``, unless the line
right before its fence (blank lines aside) is ``<!-- not-run -->``. A block that shows an
error on purpose is one followed directly by a ```json problem document: it is expected to
answer that document's ``status``, and the fields its ``errors`` name.
"""

import re
from dataclasses import dataclass, field

NOT_RUN_MARKER = "<!-- not-run -->"
SHELL_LANGUAGES = ("sh", "bash")
FENCE = re.compile(r"^```(\S*)\s*$")
ASSIGNMENT = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)=")
OUTPUT_FILE = re.compile(r"\s-o\s+(\S+)")
PROBLEM_STATUS = re.compile(r'"status":\s*(\d{3})')
PROBLEM_FIELD = re.compile(r'"field":\s*"([^"]+)"')


@dataclass(frozen=True)
class FencedBlock:
    """One fenced block: its language, its text, and the lines its fences are on (1-based)."""

    language: str
    text: str
    line: int
    closing_line: int
    not_run: bool


@dataclass(frozen=True)
class ExpectedProblem:
    """The error a block shows on purpose: its HTTP status and the fields it names."""

    status: int
    fields: tuple[str, ...]


@dataclass(frozen=True)
class ShellExample:
    """A shell block the docs tests run, with what its output is expected to be."""

    text: str
    line: int
    problem: ExpectedProblem | None = None
    assigned: tuple[str, ...] = field(default=())
    id_holders: tuple[str, ...] = field(default=())
    output_files: tuple[str, ...] = field(default=())


def fenced_blocks(markdown: str) -> list[FencedBlock]:
    """Every fenced block of ``markdown``, in order."""
    blocks: list[FencedBlock] = []
    lines = markdown.splitlines()
    index = 0
    while index < len(lines):
        opening = FENCE.match(lines[index])
        if opening is None:
            index += 1
            continue
        end = next((i for i in range(index + 1, len(lines)) if lines[i].startswith("```")), len(lines))
        marked = previous_text_line(lines, index) == NOT_RUN_MARKER
        text = "\n".join(lines[index + 1 : end]) + "\n"
        blocks.append(FencedBlock(opening.group(1), text, index + 1, end + 1, marked))
        index = end + 1
    return blocks


def previous_text_line(lines: list[str], index: int) -> str:
    """The last non-blank line before ``lines[index]``, stripped; empty when there is none."""
    return next((lines[i].strip() for i in range(index - 1, -1, -1) if lines[i].strip()), "")


def shell_examples(markdown: str) -> list[ShellExample]:
    """The blocks the docs tests run, in document order (see the module's rule)."""
    blocks = fenced_blocks(markdown)
    examples = []
    for position, block in enumerate(blocks):
        if block.language not in SHELL_LANGUAGES or "curl" not in block.text or block.not_run:
            continue
        following = blocks[position + 1] if position + 1 < len(blocks) else None
        assigned = assignments(block.text)
        examples.append(
            ShellExample(
                text=block.text,
                line=block.line,
                problem=shown_problem(block, following, markdown),
                assigned=tuple(dict.fromkeys(name for name, _ in assigned)),
                id_holders=tuple(name for name, statement in assigned if '["id"]' in statement),
                output_files=tuple(OUTPUT_FILE.findall(block.text)),
            )
        )
    return examples


def shown_problem(block: FencedBlock, following: FencedBlock | None, markdown: str) -> ExpectedProblem | None:
    """The problem document shown right after ``block`` (only blank lines between), if any."""
    if following is None or following.language != "json":
        return None
    between = markdown.splitlines()[block.closing_line : following.line - 1]
    if any(line.strip() for line in between):
        return None
    status = PROBLEM_STATUS.search(following.text)
    if status is None or int(status.group(1)) < 400:
        return None
    return ExpectedProblem(int(status.group(1)), tuple(PROBLEM_FIELD.findall(following.text)))


def assignments(script: str) -> list[tuple[str, str]]:
    """The variables a script assigns at a line's start (``JOB=...``), each with its text up to the next."""
    lines = script.splitlines()
    starts = [(i, match.group(1)) for i, line in enumerate(lines) if (match := ASSIGNMENT.match(line))]
    ends = [i for i, _ in starts[1:]] + [len(lines)]
    return [(name, "\n".join(lines[start:end])) for (start, name), end in zip(starts, ends, strict=False)]


def documented_keys(markdown: str, first_key: str) -> tuple[str, ...]:
    """The top-level keys of the inline example answer in ``markdown`` that starts with ``first_key``."""
    span = re.search(r'`(\{"' + re.escape(first_key) + r'":[^`]*)`', markdown)
    assert span is not None, f"no inline example starting with {first_key!r}"
    keys, depth = [], 0
    for match in re.finditer(r'[{}\[\]]|"([^"]*)"\s*:', span.group(1)):
        token = match.group(0)
        if token in "{[":
            depth += 1
        elif token in "}]":
            depth -= 1
        elif depth == 1:
            keys.append(match.group(1))
    return tuple(keys)
