"""Steps on the web page that several tests take."""

from pathlib import Path

from playwright.sync_api import Locator, Page, expect

from tests.ui.conftest import Tab

TRAINING_TIMEOUT_MS = 240_000


def sign_in(tab: Tab, api_url: str, key: str) -> None:
    """Open the page, answer the key prompt, and wait until the prompt is gone."""
    tab.page.goto(f"{api_url}/ui")
    enter_key(tab.page, key)
    expect(tab.page.locator("#key-dialog")).to_be_hidden()


def enter_key(page: Page, key: str) -> None:
    expect(page.locator("#key-dialog")).to_be_visible()
    page.get_by_label("API key", exact=True).fill(key)
    page.get_by_role("button", name="Sign in").click()


def points(page: Page, series: str) -> Locator:
    """The points of one curve of the job page."""
    return page.locator(f'circle[data-series="{series}"]')


def shoot(page: Page, folder: Path, name: str) -> Path:
    """A full-page screenshot kept as a test artifact."""
    path = folder / name
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 10_000, "a screenshot of the page should not be blank"
    return path


def assert_no_overflow(page: Page) -> None:
    """Nothing is wider than the window (no sideways scrolling on a laptop screen)."""
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= page.viewport_size["width"] if page.viewport_size else True, width
