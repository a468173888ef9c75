"""``/docs`` and ``/redoc`` in a browser that may reach nothing but the service: both render the
API from the service's own copies of Swagger UI and ReDoc."""

from pathlib import Path

from playwright.sync_api import Route, expect

from tests.ui.conftest import Tab


def test_the_documentation_renders_with_nothing_but_the_service(
    tab: Tab, api_url: str, artifacts_dir: Path
) -> None:
    elsewhere: list[str] = []

    def only_the_service(route: Route) -> None:
        if route.request.url.startswith(f"{api_url}/"):
            route.continue_()
        else:  # a CDN, a font host: as on a machine without internet
            elsewhere.append(route.request.url)
            route.abort()

    tab.page.route("**/*", only_the_service)
    tab.page.goto(f"{api_url}/docs")
    expect(tab.page.locator("#operations-jobs-submit_job")).to_be_visible()
    expect(tab.page.locator("#operations-health-get_readiness")).to_be_visible()
    tab.page.screenshot(path=artifacts_dir / "docs-swagger-ui.png")
    tab.page.goto(f"{api_url}/redoc")
    expect(tab.page.get_by_role("heading", name="Submit a training job").first).to_be_visible()
    tab.page.screenshot(path=artifacts_dir / "docs-redoc.png")
    assert elsewhere == [], "the pages' policy stops every request for another origin"
    blocked = [error for error in tab.script_errors() if "violates the following Content Security" in error]
    # ReDoc always shows a "powered by" logo from its CDN; the policy blocks it (it hides itself).
    assert [error.split("'")[1] for error in blocked] == ["https://cdn.redoc.ly/redoc/logo-mini.svg"]
    assert [error for error in tab.script_errors() if error not in blocked] == []
