"""Fixtures for the web page's tests: Debian's Chromium driven by Playwright, a tenant of the
page's own, and a folder for screenshots (``KJOBS_TEST_ARTIFACTS``, else ``test-artifacts/``)."""

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, sync_playwright

from shared.settings import Settings
from tests.conftest import new_api_key
from tests.helpers import wait_for

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
LAPTOP = {"width": 1366, "height": 768}
REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    """Where screenshots go, kept after the run for people (and CI) to look at."""
    folder = Path(os.environ.get("KJOBS_TEST_ARTIFACTS") or REPO_ROOT / "test-artifacts")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Headless Chromium; module-scoped so Playwright's event loop lives only while these tests run."""
    assert Path(CHROMIUM).is_file(), f"the web page's tests need Chromium at {CHROMIUM}"
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@dataclass
class Tab:
    """A browser tab on the page, with what went wrong in it: script errors and console errors."""

    page: Page
    errors: list[str] = field(default_factory=list)

    def record(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.errors.append(message.text)

    def script_errors(self) -> list[str]:
        """Errors other than refused requests (a 401 is logged by the browser, and is expected)."""
        return [error for error in self.errors if "Failed to load resource" not in error]


@pytest.fixture
def tab(browser: Browser) -> Iterator[Tab]:
    """A fresh tab (its own sessionStorage) at laptop size that accepts downloads."""
    context = browser.new_context(viewport=LAPTOP, accept_downloads=True)
    context.set_default_timeout(30_000)
    page = context.new_page()
    opened = Tab(page)
    page.on("console", opened.record)
    page.on("pageerror", lambda error: opened.errors.append(f"uncaught: {error}"))
    yield opened
    context.close()


@dataclass
class Tenant:
    """A tenant of the page's own, so its job list holds only these tests' jobs."""

    key: str
    http: httpx.Client

    def submit(self, spec: dict[str, Any]) -> str:
        response = self.http.post("/v1/jobs", json=spec)
        assert response.status_code == 202, response.text
        job_id: str = response.json()["id"]
        return job_id

    def job(self, job_id: str) -> dict[str, Any]:
        job: dict[str, Any] = self.http.get(f"/v1/jobs/{job_id}").json()
        return job

    def wait_status(self, job_id: str, *statuses: str, timeout: float = 240) -> dict[str, Any]:
        def reached() -> dict[str, Any] | None:
            job = self.job(job_id)
            return job if job["status"] in statuses else None

        return wait_for(reached, timeout=timeout, interval=0.2, what=f"job {job_id} to be {statuses}")


@pytest.fixture(scope="module")
def tenant(api_url: str, settings_env: Settings) -> Iterator[Tenant]:
    """An API key of a new tenant, and an HTTP client that uses it."""
    key = new_api_key(settings_env, f"ui-{uuid.uuid4().hex[:8]}")
    with httpx.Client(base_url=api_url, timeout=30, headers={"Authorization": f"Bearer {key}"}) as http:
        yield Tenant(key, http)
