"""The web page itself: its headers, the key prompt, signing out, and a service without auth."""

import os
from pathlib import Path

import httpx
from playwright.sync_api import expect

from tests.conftest import running_api
from tests.ui.conftest import Tab, Tenant
from tests.ui.pages import enter_key, sign_in


def test_the_page_has_a_strict_policy_of_its_own(api_url: str) -> None:
    page = httpx.get(f"{api_url}/ui")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    policy = page.headers["content-security-policy"]
    assert "script-src 'self'" in policy
    assert "unsafe" not in policy
    assert "default-src 'none'" in policy
    assert page.headers["x-frame-options"] == "DENY"
    script = httpx.get(f"{api_url}/ui/static/app.js")
    assert script.status_code == 200
    assert "javascript" in script.headers["content-type"]
    api = httpx.get(f"{api_url}/v1/jobs")
    assert api.headers["content-security-policy"] == "default-src 'none'; frame-ancestors 'none'"
    assert httpx.get(f"{api_url}/ui/static/missing.js").status_code == 404
    assert "/ui" not in httpx.get(f"{api_url}/openapi.json").json()["paths"]


def test_a_wrong_key_is_refused_and_the_prompt_stays(tab: Tab, api_url: str, tenant: Tenant) -> None:
    tab.page.goto(f"{api_url}/ui")
    enter_key(tab.page, "kj_not-a-key")

    expect(tab.page.locator("#key-error")).to_have_text("That key was refused: check it and try again.")
    expect(tab.page.locator("#key-dialog")).to_be_visible()
    enter_key(tab.page, tenant.key)
    expect(tab.page.locator("#key-dialog")).to_be_hidden()
    expect(tab.page.locator("h1")).to_have_text("Jobs")
    assert tab.page.evaluate("sessionStorage.getItem('kjobs.apiKey')") == tenant.key
    assert tab.script_errors() == []


def test_sign_out_forgets_the_key_and_asks_again(tab: Tab, api_url: str, tenant: Tenant) -> None:
    sign_in(tab, api_url, tenant.key)

    tab.page.get_by_role("button", name="Sign out").click()

    expect(tab.page.locator("#key-dialog")).to_be_visible()
    assert tab.page.evaluate("sessionStorage.getItem('kjobs.apiKey')") is None
    tab.page.reload()
    expect(tab.page.locator("#key-dialog")).to_be_visible()


def test_a_refused_key_brings_the_prompt_back(tab: Tab, api_url: str, tenant: Tenant) -> None:
    sign_in(tab, api_url, tenant.key)
    expect(tab.page.locator("h1")).to_have_text("Jobs")
    # A key revoked while the page is open looks like this to the page: the next call is a 401.
    tab.page.evaluate("sessionStorage.setItem('kjobs.apiKey', 'kj_revoked')")

    tab.page.goto(f"{api_url}/ui#/compare")

    expect(tab.page.locator("#key-dialog")).to_be_visible()
    expect(tab.page.locator("#key-error")).to_contain_text("Your key was refused")
    enter_key(tab.page, tenant.key)
    expect(tab.page.locator("h1")).to_have_text("Compare")
    assert tab.script_errors() == []


def test_without_auth_the_page_needs_no_key(tab: Tab, tmp_path: Path) -> None:
    env = {**os.environ, "AUTH_ENABLED": "false"}
    with running_api(env, tmp_path / "api.log") as url:
        tab.page.goto(f"{url}/ui")
        expect(tab.page.locator("h1")).to_have_text("Jobs")
        expect(tab.page.locator("#auth-state")).to_have_text("Authentication is off")
        expect(tab.page.locator("#key-dialog")).to_be_hidden()
        expect(tab.page.get_by_role("button", name="Sign out")).to_be_hidden()
    assert tab.script_errors() == []


def test_the_event_parser_reads_the_stream_format(tab: Tab, api_url: str) -> None:
    tab.page.goto(f"{api_url}/ui/static/favicon.svg")  # same origin, without running the page
    parsed = tab.page.evaluate(
        """async () => {
            const { parseBlock } = await import('/ui/static/events.js');
            return [
                parseBlock('id: 3\\nevent: epoch\\ndata: {"epoch": 3}'),
                parseBlock('event: state\\ndata:{"status":"running",\\ndata: "last_epoch":0}'),
                parseBlock(': keep-alive'),
            ];
        }"""
    )
    assert parsed == [
        {"id": "3", "event": "epoch", "data": '{"epoch": 3}'},
        {"id": None, "event": "state", "data": '{"status":"running",\n"last_epoch":0}'},
        None,
    ]
