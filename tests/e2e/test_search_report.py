"""A search's report, for real: a grid search on the suite's worker, read back as Markdown (its
summary, best trial, importances and trials over the leaderboard) and as CSV."""

import csv
import io
from typing import Any

import httpx
import pytest

from tests.helpers import tiny_spec, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("worker")]

BASE = tiny_spec(dataset={"train_limit": 300}, training={"epochs": 2, "batch_size": 32})
# Six points, two of them invalid (no layer of 0 units): four trials run.
SPACE = {
    "training.learning_rate": {"choice": [0.01, 0.001]},
    "model.hidden_layers": {"choice": [[16], [0], [32]]},
}


@pytest.fixture(scope="module")
def grid_search(client: httpx.Client) -> dict[str, Any]:
    body = {"name": "report-grid", "base": BASE, "space": SPACE, "sampler": "grid", "max_total_epochs": 40}
    created = client.post("/v1/studies", json=body)
    assert created.status_code == 202, created.text

    def ended() -> dict[str, Any] | None:
        study: dict[str, Any] = client.get(f"/v1/studies/{created.json()['id']}").json()
        return study if study["status"] == "completed" else None

    return wait_for(ended, timeout=300, interval=0.5, what="the grid search to end")


def section(markdown: str, heading: str) -> list[str]:
    """The non-empty lines under ``## heading``, up to the next heading."""
    _, found, rest = markdown.partition(f"\n## {heading}\n")
    assert found, f"no section {heading!r} in:\n{markdown}"
    return [line for line in rest.split("\n## ")[0].splitlines() if line]


def cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip("|").split(" | ")]


def test_the_markdown_report_of_a_search(client: httpx.Client, grid_search: dict[str, Any]) -> None:
    search = grid_search["search"]
    answer = client.get(grid_search["links"]["report"])
    assert answer.headers["content-type"].startswith("text/markdown")
    markdown = answer.text

    assert section(markdown, "Search") == [
        "- Sampler: grid",
        "- Pruner: median (min_epochs 1, startup_trials 5)",
        "- End reason: space_exhausted",
        "- Trials: 4 started of 20",
        f"- Epochs: {search['epochs_spent']} spent of 40",
    ]
    assert search["epochs_spent"] == 8
    best = search["best_trial"]
    sentence, header, _, *params = section(markdown, "Best trial")
    assert sentence == (
        f"Trial {best['number']}: val_accuracy {best['value']:.4f} after 2 epochs (job `{best['job_id']}`)."
    )
    assert header == "| parameter | value |"
    assert [cells(line)[0] for line in params] == ["model.hidden_layers", "training.learning_rate"]
    assert cells(params[0])[1] == str(best["params"]["model.hidden_layers"])
    importances = section(markdown, "Parameter importances")[2:]
    assert search["importances"], "four trials completed"
    assert {cells(line)[0]: float(cells(line)[1]) for line in importances} == pytest.approx(
        search["importances"], abs=1e-4
    )
    header, _, *trials = section(markdown, "Trials")
    assert cells(header) == [
        "number",
        "state",
        "value",
        "epochs",
        "model.hidden_layers",
        "training.learning_rate",
        "job_id",
        "error",
    ]
    assert [cells(line)[1] for line in trials] == [trial["state"] for trial in search["trials"]]
    assert sorted(cells(line)[1] for line in trials) == ["complete"] * 4 + ["invalid"] * 2
    invalid = [cells(line) for line in trials if cells(line)[1] == "invalid"]
    assert all(row[4] == "[0]" and "hidden_layers" in row[7] for row in invalid), invalid
    leaderboard = section(markdown, "Leaderboard")
    assert leaderboard[0] == "Ranked by the best val_accuracy (max) over the epochs."
    assert len(leaderboard) == 3 + 4


def test_the_trials_as_csv(client: httpx.Client, grid_search: dict[str, Any]) -> None:
    answer = client.get(grid_search["links"]["report"], params={"format": "trials-csv"})
    assert answer.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(answer.text)))
    trials = grid_search["search"]["trials"]
    assert [int(row["number"]) for row in rows] == [trial["number"] for trial in trials]
    for row, trial in zip(rows, trials, strict=True):
        assert row["state"] == trial["state"]
        assert (float(row["value"]) if row["value"] else None) == trial["value"]
        assert int(row["epochs"]) == trial["epochs"]
        assert row["model.hidden_layers"] == str(trial["params"]["model.hidden_layers"])
        assert float(row["training.learning_rate"]) == trial["params"]["training.learning_rate"]
        assert row["job_id"] == (trial["job_id"] or "")
    leaderboard = client.get(grid_search["links"]["report"], params={"format": "csv"}).text
    assert len(leaderboard.strip().splitlines()) == 1 + 4, "the leaderboard: the four jobs"


def test_a_study_of_variants_has_no_trials(client: httpx.Client) -> None:
    body = {"base": BASE | {"resources": {"queue": "gpu"}}, "variants": [{"name": "only"}]}
    study = client.post("/v1/studies", json=body).json()
    try:
        answer = client.get(study["links"]["report"], params={"format": "trials-csv"})
        assert answer.text.splitlines() == ["number,state,value,epochs,job_id,error"]
        assert "## " not in client.get(study["links"]["report"]).text
    finally:
        client.post(f"/v1/studies/{study['id']}/cancel")
