"""The command tests' fixtures: the client fixtures (a fresh tenant's key, a client holding it),
and ``kjobs`` run as a user runs it, against the running API with its output piped."""

import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from tests.client.conftest import api_key, kjobs

__all__ = ["api_key", "kjobs"]

REPO_ROOT = Path(__file__).resolve().parents[2]
RUN_TIMEOUT_SECONDS = 300
JOB_ID = re.compile(r"^[0-9a-f]{24}$")

Kjobs = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def cli_env(api_url: str, api_key: str, tmp_path: Path) -> dict[str, str]:
    """The environment of a user of the running API."""
    return {**os.environ, "KJOBS_URL": api_url, "KJOBS_API_KEY": api_key}


@pytest.fixture
def kjobs_cli(cli_env: dict[str, str], tmp_path: Path) -> Kjobs:
    """Runs ``kjobs ARGS...`` and returns the finished process (output captured, so piped)."""

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "cli.main", *args],
            cwd=REPO_ROOT,
            env={**cli_env, "PYTHONPATH": str(REPO_ROOT)},
            capture_output=True,
            text=True,
            timeout=RUN_TIMEOUT_SECONDS,
            check=False,
        )

    return run


def write_yaml(path: Path, document: dict[str, object]) -> Path:
    path.write_text(yaml.safe_dump(document))
    return path
