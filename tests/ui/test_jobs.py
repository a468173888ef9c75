"""The web page on a live service: the job list, a job's live learning curves, cancel, download
and the compare view, in headless Chromium against real training on the Celery worker."""

import io
import re
from pathlib import Path

import numpy as np
import pytest
from playwright.sync_api import expect
from sklearn.datasets import load_diabetes

from tests.helpers import tiny_spec
from tests.ui.conftest import Tab, Tenant
from tests.ui.pages import TRAINING_TIMEOUT_MS, assert_no_overflow, points, shoot, sign_in

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("worker")]

EPOCHS = 6
CURVES = ("loss", "val_loss", "accuracy", "val_accuracy")


def test_curves_grow_on_the_job_page_as_epochs_arrive(
    tab: Tab, api_url: str, tenant: Tenant, artifacts_dir: Path
) -> None:
    # The worker trains one job at a time: while the long job runs, ours waits in the queue.
    blocker = tenant.submit(tiny_spec(name="ui-long", training={"epochs": 1000}))
    job_id = tenant.submit(tiny_spec(name="ui-curves", tags={"suite": "ui"}, training={"epochs": EPOCHS}))
    page = tab.page
    sign_in(tab, api_url, tenant.key)

    for listed in (blocker, job_id):
        expect(page.locator(f'tr[data-job-id="{listed}"]')).to_be_visible()
    row = page.locator(f'tr[data-job-id="{job_id}"]')
    expect(row).to_contain_text("ui-curves")
    expect(row).to_contain_text("suite: ui")
    expect(row).to_contain_text(f"0/{EPOCHS}")
    expect(page.locator(f'tr[data-job-id="{blocker}"]')).to_have_attribute("data-status", "running")
    assert_no_overflow(page)
    shoot(page, artifacts_dir, "ui-jobs-list.png")

    row.get_by_role("link", name="ui-curves").click()
    expect(page).to_have_url(re.compile(f"#/jobs/{job_id}$"))
    expect(page.locator("h1")).to_have_text("ui-curves")
    expect(page.locator(".page-head .status")).to_have_text("queued")
    expect(page.get_by_text("Waiting for the first epoch…").first).to_be_visible()
    assert page.locator("circle[data-epoch]").count() == 0

    tenant.http.post(f"/v1/jobs/{blocker}/cancel").raise_for_status()
    # The page stays open: every point from here on arrives through the event stream.
    expect(points(page, "val_accuracy").first).to_be_visible(timeout=TRAINING_TIMEOUT_MS)
    for curve in CURVES:
        expect(points(page, curve)).to_have_count(EPOCHS, timeout=TRAINING_TIMEOUT_MS)
    epochs = points(page, "val_loss").evaluate_all("nodes => nodes.map(n => Number(n.dataset.epoch))")
    assert epochs == list(range(1, EPOCHS + 1))
    expect(page.locator(".page-head .status")).to_have_text("succeeded", timeout=TRAINING_TIMEOUT_MS)
    expect(page.locator(".head-progress")).to_contain_text(f"{EPOCHS}/{EPOCHS}")
    expect(page.get_by_text("Test accuracy")).to_be_visible()
    expect(page.locator(".transitions tbody tr")).to_have_count(3)
    expect(page.locator("#cancel-job")).to_have_count(0)
    for chart in ("loss", "accuracy"):
        legend = page.locator(f'[data-chart="{chart}"] .legend li')
        expect(legend).to_have_text([f"training {chart}", f"validation {chart}"])
    assert_no_overflow(page)
    shoot(page, artifacts_dir, "ui-job.png")
    for chart in ("loss", "accuracy"):
        ticks = page.locator(f'[data-chart="{chart}"] text.tick').all_text_contents()
        assert ticks[-EPOCHS:] == [str(epoch) for epoch in range(1, EPOCHS + 1)], "one x tick per epoch"
        assert len(ticks) - EPOCHS >= 3, f"the {chart} axis needs y ticks: {ticks}"

    with page.expect_download() as download:
        page.locator("#download-model").click()
    saved = download.value.path()
    assert download.value.suggested_filename == f"{job_id}.keras"
    assert saved.read_bytes()[:2] == b"PK", "a .keras file is a zip archive"
    assert tab.script_errors() == []


def test_the_cancel_button_stops_a_running_job(tab: Tab, api_url: str, tenant: Tenant) -> None:
    job_id = tenant.submit(tiny_spec(name="ui-cancel", training={"epochs": 1000}))
    tenant.wait_status(job_id, "running")
    sign_in(tab, api_url, tenant.key)
    tab.page.goto(f"{api_url}/ui#/jobs/{job_id}")
    expect(tab.page.locator(".page-head .status")).to_have_text("running")

    tab.page.get_by_role("button", name="Cancel job").click()

    expect(tab.page.locator(".page-head .status")).to_have_text("cancelled", timeout=TRAINING_TIMEOUT_MS)
    expect(tab.page.locator("#cancel-job")).to_have_count(0)
    assert tenant.job(job_id)["status"] == "cancelled"
    assert tab.script_errors() == []


def test_compare_overlays_two_selected_jobs(
    tab: Tab, api_url: str, tenant: Tenant, artifacts_dir: Path
) -> None:
    fast = tenant.submit(tiny_spec(name="ui-fast", training={"epochs": 4, "learning_rate": 0.01}))
    slow = tenant.submit(tiny_spec(name="ui-slow", training={"epochs": 4, "learning_rate": 0.0005}))
    for job_id in (fast, slow):
        assert tenant.wait_status(job_id, "succeeded", "failed", "cancelled")["status"] == "succeeded"
    page = tab.page
    sign_in(tab, api_url, tenant.key)

    compare = page.get_by_role("button", name=re.compile("Compare selected"))
    expect(compare).to_be_disabled()
    page.get_by_label("Select ui-fast for comparison").check()
    page.get_by_label("Select ui-slow for comparison").check()
    expect(compare).to_have_text("Compare selected (2)")
    compare.click()

    expect(page).to_have_url(re.compile(r"#/compare\?jobs="))
    for job_id in (fast, slow):
        for chart in ("compare-loss", "compare-accuracy"):
            expect(page.locator(f'[data-chart="{chart}"] circle[data-job="{job_id}"]')).to_have_count(4)
    expect(page.locator('[data-chart="compare-accuracy"] .legend li')).to_have_text(["ui-fast", "ui-slow"])
    colours = page.locator('[data-chart="compare-loss"] .legend circle').evaluate_all(
        "nodes => nodes.map(n => n.getAttribute('fill'))"
    )
    assert len(set(colours)) == 2, "one colour per job"
    table = page.locator("#final-metrics tbody tr")
    expect(table).to_have_count(2)
    expect(table.nth(0)).to_contain_text("ui-fast")
    expect(table.nth(0)).to_contain_text("4/4")
    assert_no_overflow(page)
    shoot(page, artifacts_dir, "ui-compare.png")
    assert tab.script_errors() == []


def test_compare_shows_a_whole_study(tab: Tab, api_url: str, tenant: Tenant) -> None:
    variants = [
        {"name": "no-dropout", "overrides": {}},
        {"name": "dropout", "overrides": {"regularization": {"dropout": 0.3}}},
    ]
    body = {"name": "ui-study", "base": tiny_spec(training={"epochs": 3}), "variants": variants}
    response = tenant.http.post("/v1/studies", json=body)
    assert response.status_code == 202, response.text
    study = response.json()
    for job in study["jobs"]:
        tenant.wait_status(job["job_id"], "succeeded", "failed", "cancelled")
    page = tab.page
    sign_in(tab, api_url, tenant.key)
    page.get_by_role("link", name="Compare").click()

    page.get_by_label("Study").select_option(study["id"])

    expect(page.locator("h2.subtitle")).to_have_text("ui-study")
    expect(page.locator("#final-metrics tbody tr")).to_have_count(2)
    expect(page.locator('[data-chart="compare-accuracy"] .legend li')).to_have_text(["no-dropout", "dropout"])
    expect(page.locator('[data-chart="compare-accuracy"] circle[data-epoch]')).to_have_count(6)
    assert tab.script_errors() == []


def test_a_regression_job_shows_its_network_mae_curves_and_scores(
    tab: Tab, api_url: str, tenant: Tenant, artifacts_dir: Path
) -> None:
    diabetes = load_diabetes()
    buffer = io.BytesIO()
    np.savez(buffer, x_train=diabetes.data, y_train=diabetes.target.astype(np.float32))
    uploaded = tenant.http.post("/v1/datasets", files={"file": ("diabetes.npz", buffer.getvalue())})
    assert uploaded.status_code == 201, uploaded.text
    layers = [{"type": "dense", "units": 16}]
    spec = tiny_spec(
        name="ui-regression",
        dataset={"name": uploaded.json()["id"], "train_limit": None},
        model={"hidden_layers": None, "layers": layers},
        training={"epochs": 3, "learning_rate": 0.01},
    )
    job_id = tenant.submit(spec)
    tenant.wait_status(job_id, "succeeded")
    page = tab.page
    sign_in(tab, api_url, tenant.key)
    page.goto(f"{api_url}/ui/#/jobs/{job_id}")
    expect(page.locator("h1")).to_have_text("ui-regression")
    expect(page.get_by_text("input 10 → dense 16 → linear 1")).to_be_visible()
    expect(page.get_by_text("regression, 1 targets")).to_be_visible()
    for curve in ("mae", "val_mae"):
        expect(points(page, curve)).to_have_count(3, timeout=TRAINING_TIMEOUT_MS)
    expect(page.get_by_text("Test R²")).to_be_visible()
    assert page.get_by_text("Test accuracy").count() == 0
    assert_no_overflow(page)
    shoot(page, artifacts_dir, "ui-regression-job.png")
    assert tab.script_errors() == []
