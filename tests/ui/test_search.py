"""The web page on a search, for real: the study list, a search's page while it runs and once it
ended (its budgets, best trial, importances, progress plot and trials, each linked to its job),
in headless Chromium against trials trained on the Celery worker."""

import re
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.helpers import tiny_spec, wait_for
from tests.ui.conftest import Tab, Tenant
from tests.ui.pages import TRAINING_TIMEOUT_MS, assert_no_overflow, shoot, sign_in

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("worker")]

# Six points, two of them invalid (no layer of 0 units): four trials of two epochs run.
SEARCH = {
    "name": "ui-search",
    "base": tiny_spec(dataset={"train_limit": 300}, training={"epochs": 2, "batch_size": 32}),
    "space": {
        "training.learning_rate": {"choice": [0.01, 0.001]},
        "model.hidden_layers": {"choice": [[16], [0], [32]]},
    },
    "sampler": "grid",
    "max_total_epochs": 40,
}


def ended(tenant: Tenant, study_id: str) -> dict[str, Any]:
    def completed() -> dict[str, Any] | None:
        study: dict[str, Any] = tenant.http.get(f"/v1/studies/{study_id}").json()
        return study if study["status"] == "completed" else None

    return wait_for(completed, timeout=TRAINING_TIMEOUT_MS / 1000, interval=0.5, what="the search to end")


def test_a_search_s_page_shows_its_summary_best_trial_importances_plot_and_trials(
    tab: Tab, api_url: str, tenant: Tenant, artifacts_dir: Path
) -> None:
    created = tenant.http.post("/v1/studies", json=SEARCH)
    assert created.status_code == 202, created.text
    study_id = created.json()["id"]
    page = tab.page
    sign_in(tab, api_url, tenant.key)

    page.get_by_role("link", name="Studies", exact=True).click()
    row = page.locator(f'tr[data-study-id="{study_id}"]')
    expect(row).to_contain_text("ui-search")
    expect(row).to_contain_text("search, ")
    assert_no_overflow(page)
    shoot(page, artifacts_dir, "ui-studies.png")
    row.get_by_role("link", name="ui-search").click()
    expect(page).to_have_url(re.compile(f"#/studies/{study_id}$"))
    expect(page.locator("h1")).to_have_text("ui-search")
    # The page stays open: it refreshes itself until the search ends.
    expect(page.locator(".page-head .status")).to_have_text("completed", timeout=TRAINING_TIMEOUT_MS)
    study = ended(tenant, study_id)
    search = study["search"]
    expect(page.locator("#trials tbody tr")).to_have_count(6)

    summary = page.locator("#search-summary")
    for text in ("grid", "median (min_epochs 1, startup_trials 5)", "4 started of 20", "8 spent of 40"):
        expect(summary).to_contain_text(text)
    expect(summary).to_contain_text("space_exhausted")
    best = search["best_trial"]
    expect(page.locator("#best-trial")).to_contain_text(f"#{best['number']}")
    expect(page.locator("#best-trial")).to_contain_text(f"{best['value']:.4f}")
    layers = "[" + ",".join(str(units) for units in best["params"]["model.hidden_layers"]) + "]"
    expect(page.locator("#best-trial")).to_contain_text(layers)
    assert search["importances"], "four trials completed"
    bars = page.locator("#importances .bars li")
    expect(bars).to_have_count(len(search["importances"]))
    ranked = sorted(search["importances"], key=search["importances"].get, reverse=True)
    assert bars.evaluate_all("nodes => nodes.map(n => n.dataset.param)") == ranked
    fills = page.locator("#importances rect.bar-fill").evaluate_all(
        "nodes => nodes.map(n => Number(n.getAttribute('width')))"
    )
    assert fills == pytest.approx([100 * search["importances"][path] for path in ranked], abs=0.01)

    rows = page.locator("#trials tbody tr")
    states = rows.evaluate_all("nodes => nodes.map(n => n.dataset.state)")
    assert states == [trial["state"] for trial in search["trials"]]
    assert sorted(states) == ["complete"] * 4 + ["invalid"] * 2
    invalid = page.locator('#trials tr[data-state="invalid"]')
    expect(invalid.first.locator("td.note")).to_contain_text("hidden_layers")
    assert invalid.first.locator("a").count() == 0, "an invalid point ran no job"
    header = page.locator("#trials thead th").all_text_contents()
    assert header[4:6] == ["model.hidden_layers", "training.learning_rate"]

    plot = page.locator("#search-progress")
    expect(plot).to_be_visible()
    assert plot.get_attribute("src", timeout=5000).startswith("blob:")
    assert plot.evaluate("img => img.complete && img.naturalWidth") >= 400
    assert_no_overflow(page)
    shoot(page, artifacts_dir, "ui-search.png")

    trial = next(t for t in search["trials"] if t["state"] == "complete")
    page.locator(f'#trials tr[data-trial="{trial["number"]}"]').get_by_role(
        "link", name=f"#{trial['number']}"
    ).click()
    expect(page).to_have_url(re.compile(f"#/jobs/{trial['job_id']}$"))
    expect(page.locator(".page-head .status")).to_have_text("succeeded")
    page.get_by_role("link", name=re.compile(rf"^#{trial['number']} ")).click()
    expect(page).to_have_url(re.compile(f"#/studies/{study_id}$"))
    expect(page.locator("#trials tbody tr")).to_have_count(6)
    assert tab.script_errors() == []


def test_a_study_of_variants_shows_its_leaderboard(tab: Tab, api_url: str, tenant: Tenant) -> None:
    body = {
        "name": "ui-variants",
        "base": tiny_spec(resources={"queue": "gpu"}),
        "variants": [
            {"name": "plain"},
            {"name": "dropout", "overrides": {"regularization": {"dropout": 0.2}}},
        ],
    }
    study = tenant.http.post("/v1/studies", json=body).json()
    try:
        sign_in(tab, api_url, tenant.key)
        tab.page.goto(f"{api_url}/ui#/studies/{study['id']}")
        expect(tab.page.locator("h1")).to_have_text("ui-variants")
        expect(tab.page.locator(".leaderboard tbody tr")).to_have_count(2)
        expect(tab.page.locator("#trials")).to_have_count(0)
        expect(tab.page.locator("#search-progress")).to_have_count(0)
        tab.page.get_by_role("link", name="Compare the curves").click()
        expect(tab.page.locator("h2.subtitle")).to_have_text("ui-variants")
        assert tab.script_errors() == []
    finally:
        tenant.http.post(f"/v1/studies/{study['id']}/cancel")
