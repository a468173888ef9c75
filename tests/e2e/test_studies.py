"""Studies trained for real: variants, grids, the article preset, cancel, leaderboard and curves."""

from typing import Any

import httpx
import pytest

from shared.jobs.store import JobStore
from shared.models.presets import ARTICLE_PRESETS
from shared.settings import Settings
from tests.helpers import tiny_spec, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("worker")]

BASE = tiny_spec(training={"epochs": 2})


def create(client: httpx.Client, body: dict[str, Any]) -> dict[str, Any]:
    response = client.post("/v1/studies", json=body)
    assert response.status_code == 202, response.text
    assert response.headers["location"] == f"/v1/studies/{response.json()['id']}"
    study: dict[str, Any] = response.json()
    return study


def wait_completed(client: httpx.Client, study_id: str) -> dict[str, Any]:
    def completed() -> dict[str, Any] | None:
        study: dict[str, Any] = client.get(f"/v1/studies/{study_id}").json()
        return study if study["status"] == "completed" else None

    return wait_for(completed, timeout=240, interval=0.5, what=f"study {study_id}")


@pytest.fixture(scope="module")
def three_variants(client: httpx.Client) -> dict[str, Any]:
    variants = [
        {"name": "starved", "overrides": {"training": {"learning_rate": 1e-6}}},
        {"name": "dropout", "overrides": {"regularization": {"dropout": 0.2}}},
        {"name": "plain", "overrides": {}},
    ]
    study = create(client, {"name": "three", "base": BASE, "variants": variants, "max_parallel": 1})
    assert study["counts"] == {"queued": 1, "held": 2}, "the cap holds two of three"
    return wait_completed(client, study["id"])


def test_a_study_of_three_variants_completes_with_a_ranked_leaderboard(
    three_variants: dict[str, Any],
) -> None:
    board = three_variants["leaderboard"]
    assert three_variants["counts"] == {"succeeded": 3}
    assert [row["rank"] for row in board] == [1, 2, 3]
    values = [row["best_value"] for row in board]
    assert values == sorted(values, reverse=True)
    assert board[-1]["variant"] == "starved", "a learning rate of 1e-6 learns nothing in two epochs"
    for row in board:
        assert row["best_epoch"] in (1, 2)
        assert row["stopped_epoch"] == 2
        assert row["mean_epoch_seconds"] > 0
        assert row["gap_at_best"] is not None


def test_study_jobs_are_ordinary_jobs_that_name_their_study(
    client: httpx.Client, three_variants: dict[str, Any]
) -> None:
    first = three_variants["jobs"][0]
    job = client.get(f"/v1/jobs/{first['job_id']}").json()
    assert job["study"] == {"id": three_variants["id"], "variant": first["variant"], "trial": None}
    assert job["spec"]["training"]["learning_rate"] == 1e-6


def test_the_report_and_the_curves(client: httpx.Client, three_variants: dict[str, Any]) -> None:
    base = three_variants["links"]
    csv = client.get(base["report"], params={"format": "csv"})
    assert csv.headers["content-type"].startswith("text/csv")
    lines = csv.text.strip().splitlines()
    assert lines[0].startswith("rank,variant,status,best_value")
    assert len(lines) == 4
    markdown = client.get(base["report"]).text
    assert "Ranked by the best val_accuracy (max)" in markdown
    assert markdown.count("| succeeded |") == 3
    png = client.get(base["curves"])
    assert png.headers["content-type"] == "image/png"
    assert png.content.startswith(b"\x89PNG")
    assert len(png.content) > 10_000


def test_studies_are_listed_for_their_tenant_only(
    client: httpx.Client, other_client: httpx.Client, three_variants: dict[str, Any]
) -> None:
    assert three_variants["id"] in [
        s["id"] for s in client.get("/v1/studies", params={"limit": 50}).json()["items"]
    ]
    assert other_client.get(f"/v1/studies/{three_variants['id']}").status_code == 404
    assert three_variants["id"] not in [s["id"] for s in other_client.get("/v1/studies").json()["items"]]


def test_a_grid_expands_to_its_product(client: httpx.Client) -> None:
    grid = {"regularization.l2": [1e-5, 1e-4, 1e-3], "regularization.dropout": [0.1, 0.25]}
    study = create(client, {"base": BASE | {"resources": {"queue": "gpu"}}, "grid": grid})
    assert len(study["jobs"]) == 6
    assert study["jobs"][0]["variant"] == "l2=1e-05,dropout=0.1"
    specs = {
        (job["spec"]["regularization"]["l2"], job["spec"]["regularization"]["dropout"])
        for job in (client.get(f"/v1/jobs/{j['job_id']}").json() for j in study["jobs"])
    }
    assert specs == {(l2, d) for l2 in (1e-5, 1e-4, 1e-3) for d in (0.1, 0.25)}
    cancelled = client.post(f"/v1/studies/{study['id']}/cancel").json()
    assert cancelled["counts"] == {"cancelled": 6}


@pytest.mark.parametrize(
    ("grid", "field"),
    [
        ({"regularization.l3": [0.1]}, "grid.regularization.l3"),
        ({"regularization.dropout": []}, "grid.regularization.dropout"),
        ({"regularization.dropout": [0.1, 2.0]}, "grid.regularization.dropout"),
        ({"training.optimizer": ["adam", "lbfgs"]}, "grid.training.optimizer"),
        ({"regularization.l2": [0.0] * 9, "regularization.dropout": [0.0] * 8}, "grid"),
    ],
)
def test_an_invalid_grid_is_a_422_naming_it_and_creates_nothing(
    client: httpx.Client, grid: dict[str, Any], field: str
) -> None:
    before = len(client.get("/v1/studies", params={"limit": 50}).json()["items"])
    response = client.post("/v1/studies", json={"base": BASE, "grid": grid})
    assert response.status_code == 422
    assert any(error["field"] == field for error in response.json()["errors"]), response.json()
    assert len(client.get("/v1/studies", params={"limit": 50}).json()["items"]) == before


def test_the_article_preset_is_the_six_variants_with_the_base_applied(client: httpx.Client) -> None:
    base = BASE | {"resources": {"queue": "gpu"}}
    study = create(client, {"preset": "article", "base": base})
    assert [job["variant"] for job in study["jobs"]] == list(ARTICLE_PRESETS)
    l2 = client.get(f"/v1/jobs/{study['jobs'][1]['job_id']}").json()
    assert (l2["preset"], l2["spec"]["regularization"]["l2"], l2["spec"]["training"]["epochs"]) == (
        "l2",
        1e-4,
        2,
    )
    assert client.post(f"/v1/studies/{study['id']}/cancel").json()["counts"] == {"cancelled": 6}


def test_cancelling_a_study_stops_its_running_job_and_its_held_ones(client: httpx.Client) -> None:
    slow = tiny_spec(dataset={"train_limit": 1200}, training={"epochs": 200, "batch_size": 8})
    variants = [{"name": f"v{i}", "overrides": {}} for i in range(3)]
    study = create(client, {"base": slow, "variants": variants, "max_parallel": 1})
    first = study["jobs"][0]["job_id"]
    wait_for(lambda: client.get(f"/v1/jobs/{first}").json()["progress"]["epoch"] >= 1, timeout=120)
    client.post(f"/v1/studies/{study['id']}/cancel")
    ended = wait_completed(client, study["id"])
    assert ended["counts"] == {"cancelled": 3}


def test_a_study_whose_job_expired_still_answers(client: httpx.Client, settings_env: Settings) -> None:
    body = {
        "name": "expiring",
        "base": BASE | {"resources": {"queue": "gpu"}},  # no gpu worker: its jobs wait
        "variants": [{"name": "a"}, {"name": "b", "overrides": {"regularization": {"l2": 1e-4}}}],
    }
    study = create(client, body)
    store = JobStore.from_settings(settings_env)
    store.redis.delete(store.keys.job(study["jobs"][0]["job_id"]))  # as its retention would
    answer = client.get(f"/v1/studies/{study['id']}")
    assert answer.status_code == 200, answer.text
    seen = answer.json()
    assert seen["counts"] == {"expired": 1, "queued": 1}
    assert [entry["variant"] for entry in seen["leaderboard"]] == ["b"]
    assert client.get(f"/v1/studies/{study['id']}/report").status_code == 200
    assert client.get(f"/v1/studies/{study['id']}/curves.png").status_code == 200
    assert client.get("/v1/studies", params={"limit": 50}).status_code == 200
    assert client.post(f"/v1/studies/{study['id']}/cancel").status_code == 202
