"""Fixtures of the docs tests: a reader's working directory and a tenant of their own."""

import os
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from shared.settings import Settings
from tests.conftest import new_api_key
from tests.helpers import wait_for

ACTIVE = ("queued", "running", "cancelling")


@pytest.fixture
def reader_dir(tmp_path: Path) -> Path:
    """An empty working directory whose ``.venv`` is this interpreter's, as in a clone of the project."""
    (tmp_path / ".venv").symlink_to(Path(sys.prefix), target_is_directory=True)
    return tmp_path


@pytest.fixture
def reader_key(settings_env: Settings) -> str:
    """A fresh API key of a tenant of this test's own, so its jobs are the only ones it sees."""
    return new_api_key(settings_env, f"readme-{uuid.uuid4().hex[:8]}")


@pytest.fixture
def reader_env(reader_key: str) -> dict[str, str]:
    """The environment of a reader who exported ``KJOBS_API_KEY`` as README says."""
    return {**os.environ, "KJOBS_API_KEY": reader_key}


@pytest.fixture
def reader_client(api_url: str, reader_key: str) -> Iterator[httpx.Client]:
    """The reader's tenant over HTTP; afterwards every study and job it left going is cancelled.

    The examples start long jobs and never wait for most of them; the suite's one worker must
    not spend the rest of the session training them.
    """
    headers = {"Authorization": f"Bearer {reader_key}"}
    with httpx.Client(base_url=api_url, timeout=30, headers=headers) as http:
        yield http
        cancel_everything(http)


def cancel_everything(http: httpx.Client) -> None:
    """Cancel the tenant's running studies, then its active jobs, and wait until none is active."""
    for study in http.get("/v1/studies", params={"limit": 50}).json()["items"]:
        if study["status"] == "running":
            assert http.post(f"/v1/studies/{study['id']}/cancel").status_code == 202
    for job in active_jobs(http):
        # 409: it ended between the listing and the cancel, which is as good.
        assert http.post(f"/v1/jobs/{job['id']}/cancel").status_code in (200, 202, 409)
    wait_for(lambda: not active_jobs(http), timeout=300, interval=1, what="the README's jobs to stop")


def active_jobs(http: httpx.Client) -> list[dict[str, Any]]:
    """The tenant's queued, running and cancelling jobs (the examples start far fewer than a page)."""
    page = http.get("/v1/jobs", params={"status": list(ACTIVE), "limit": 100})
    assert page.status_code == 200, page.text
    items: list[dict[str, Any]] = page.json()["items"]
    return items
