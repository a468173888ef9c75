"""Run README shell examples one after another in bash, as a reader pasting them would.

Each example runs in its own ``bash`` with ``set -euo pipefail``; the variables an example
assigns (``JOB=...``) are saved after it and restored before the next one, so the examples
share one environment the way one terminal would.
"""

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from tests.docs.readme_blocks import ShellExample

README_API = "127.0.0.1:8000"
STATE_FILE = ".readme-state.sh"
VALUES_FILE = ".readme-values.tsv"
STATUS_LINE = re.compile(r"^(\d{3})$", re.MULTILINE)

# curl fails on an HTTP error, so a broken example cannot pass unnoticed, while README keeps
# its plain `curl -s`. A line that already asks for -f keeps its own flag: curl refuses both.
FAILING_CURL = r"""
curl() {
  local arg
  for arg in "$@"; do
    case "$arg" in --fail|--fail-with-body|-f*|-[!-]*f*) command curl "$@"; return ;; esac
  done
  command curl --fail-with-body "$@"
}
"""

# For an example that shows an error on purpose: each answer's HTTP status goes to stderr
# on a line of its own, for the test to compare with the documented one.
STATUS_REPORTING_CURL = r"""
curl() { command curl --write-out '%{stderr}%{http_code}\n' "$@"; }
"""


@dataclass(frozen=True)
class ExampleRun:
    """What one example did: exit status, output, the HTTP statuses it reported, its variables."""

    returncode: int
    stdout: str
    stderr: str
    statuses: tuple[int, ...]
    variables: dict[str, str]

    def describe(self, example: ShellExample) -> str:
        """The example and its output, for an assertion message."""
        return (
            f"README line {example.line}, exit status {self.returncode}:\n{example.text}\n"
            f"--- stdout (end) ---\n{self.stdout[-3000:]}\n--- stderr (end) ---\n{self.stderr[-3000:]}"
        )


def script_of(example: ShellExample, api_host_port: str) -> str:
    """The bash script for ``example``: strict mode, curl, the saved variables, then the example."""
    wrapper = STATUS_REPORTING_CURL if example.problem else FAILING_CURL
    names = " ".join(example.assigned)
    save = (
        f"declare -p {names} >> {STATE_FILE}\n"
        f'for name in {names}; do printf \'%s\\t%s\\n\' "$name" "${{!name}}" >> {VALUES_FILE}; done\n'
        if names
        else ""
    )
    restore = f"if [ -f {STATE_FILE} ]; then source {STATE_FILE}; fi\n"
    body = example.text.replace(README_API, api_host_port)
    return f"set -euo pipefail\n{wrapper}{restore}{body}{save}"


def run_example(example: ShellExample, api_host_port: str, cwd: Path, env: dict[str, str]) -> ExampleRun:
    """Run ``example`` in ``cwd`` against the API at ``api_host_port``."""
    (cwd / VALUES_FILE).unlink(missing_ok=True)
    completed = subprocess.run(
        ["bash", "-c", script_of(example, api_host_port)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    statuses = tuple(int(code) for code in STATUS_LINE.findall(completed.stderr)) if example.problem else ()
    return ExampleRun(completed.returncode, completed.stdout, completed.stderr, statuses, read_values(cwd))


def read_values(cwd: Path) -> dict[str, str]:
    """The variables the last example assigned, by name."""
    path = cwd / VALUES_FILE
    if not path.exists():
        return {}
    pairs = (line.split("\t", 1) for line in path.read_text().splitlines())
    return {name: value for name, value in pairs}
