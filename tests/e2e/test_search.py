"""Studies that search, for real: Optuna's samplers and pruners over trials that are ordinary
jobs on the suite's worker, their state in the suite's Redis."""

import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import optuna
import pytest
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalRedisBackend

from shared.settings import Settings
from tests.conftest import stop
from tests.helpers import free_port, tiny_spec, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("worker")]

BASE = tiny_spec(dataset={"train_limit": 300}, training={"epochs": 3, "batch_size": 32})
# Two learning rates that learn and one that does not: a pruner has something to prune.
RATES = {"choice": [0.01, 0.003, 1e-7]}


def create(client: httpx.Client, body: dict[str, Any]) -> dict[str, Any]:
    answer = client.post("/v1/studies", json=body)
    assert answer.status_code == 202, answer.text
    study: dict[str, Any] = answer.json()
    return study


def finished(client: httpx.Client, study_id: str, timeout: float = 300) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        study: dict[str, Any] = client.get(f"/v1/studies/{study_id}").json()
        return study if study["status"] == "completed" else None

    return wait_for(done, timeout=timeout, interval=0.5, what="the search to end")


@pytest.fixture(scope="module")
def tpe_asha(client: httpx.Client) -> dict[str, Any]:
    body = {
        "name": "tpe-asha",
        "base": BASE,
        "space": {"training.learning_rate": RATES, "model.hidden_layers": {"choice": [[16], [32]]}},
        "sampler": {"type": "tpe", "seed": 3, "startup_trials": 2},
        "pruner": {"type": "asha", "min_epochs": 1, "reduction_factor": 2},
        "max_trials": 6,
        "max_parallel": 1,
        "objective": {"metric": "val_accuracy", "mode": "max"},
    }
    return finished(client, create(client, body)["id"])


def test_a_tpe_search_with_asha_prunes_and_ends_at_its_trials(
    tpe_asha: dict[str, Any], client: httpx.Client
) -> None:
    search = tpe_asha["search"]
    assert (search["end_reason"], search["trials_started"], search["max_trials"]) == ("max_trials", 6, 6)
    states = [trial["state"] for trial in search["trials"]]
    assert "pruned" in states, states
    assert set(states) <= {"complete", "pruned"}
    pruned = next(trial for trial in search["trials"] if trial["state"] == "pruned")
    job = client.get(f"/v1/jobs/{pruned['job_id']}").json()
    assert (job["status"], job["stop_reason"], job["has_model"]) == ("succeeded", "pruned", True)
    records = client.get(f"/v1/jobs/{pruned['job_id']}/metrics").json()["records"]
    assert [r["epoch"] for r in records] == list(range(1, pruned["epochs"] + 1))
    assert pruned["epochs"] < 3, "stopped before its last epoch"
    best = search["best_trial"]
    assert best["value"] == max(t["value"] for t in search["trials"] if t["state"] == "complete")
    assert search["epochs_spent"] == sum(t["epochs"] for t in search["trials"])
    assert all(
        set(t["params"]) == {"training.learning_rate", "model.hidden_layers"} for t in search["trials"]
    )


def test_optuna_s_own_api_reads_the_search(tpe_asha: dict[str, Any], settings_env: Settings) -> None:
    storage = JournalStorage(
        JournalRedisBackend(settings_env.redis_url, prefix=f"{settings_env.key_prefix}:optuna")
    )
    study = optuna.load_study(study_name=tpe_asha["id"], storage=storage)
    assert len(study.trials) == 6
    assert study.best_value == tpe_asha["search"]["best_trial"]["value"]
    assert {t.number: t.state.name.lower() for t in study.trials} == {
        t["number"]: t["state"] for t in tpe_asha["search"]["trials"]
    }


def test_the_progress_plot_and_the_importances(tpe_asha: dict[str, Any], client: httpx.Client) -> None:
    plot = client.get(tpe_asha["links"]["progress"])
    assert (plot.status_code, plot.headers["content-type"], plot.content[:4]) == (
        200,
        "image/png",
        b"\x89PNG",
    )
    search = tpe_asha["search"]
    importances = search["importances"]
    assert set(importances) <= {"training.learning_rate", "model.hidden_layers"}
    complete = [trial for trial in search["trials"] if trial["state"] == "complete"]
    assert bool(importances) is (len(complete) >= 2), "fANOVA's, once two trials completed"


def test_an_epoch_budget_ends_the_search(client: httpx.Client) -> None:
    body = {
        "base": BASE,
        "space": {"training.learning_rate": RATES},
        "sampler": "random",
        "max_total_epochs": 7,
    }
    search = finished(client, create(client, body)["id"])["search"]
    assert search["end_reason"] == "epoch_budget"
    assert search["epochs_spent"] <= 7
    assert search["trials_started"] == 2


def test_invalid_points_are_recorded_and_not_counted(client: httpx.Client) -> None:
    body = {
        "base": BASE,
        "space": {"model.hidden_layers": {"choice": [[16], [0], [8]]}},
        "sampler": "grid",
        "max_trials": 5,
    }
    search = finished(client, create(client, body)["id"])["search"]
    assert search["end_reason"] == "space_exhausted"
    assert search["trials_started"] == 2, search["trials"]
    (invalid,) = [t for t in search["trials"] if t["state"] == "invalid"]
    assert invalid["params"] == {"model.hidden_layers": [0]}
    assert invalid["job_id"] is None
    assert "hidden_layers" in invalid["error"]


def test_a_warm_start_tells_the_sampler_an_earlier_search_first(
    tpe_asha: dict[str, Any], client: httpx.Client
) -> None:
    body = {
        "base": BASE,
        "space": {"training.learning_rate": RATES, "model.hidden_layers": {"choice": [[16], [32]]}},
        "warm_start": [tpe_asha["id"]],
        "max_trials": 1,
    }
    search = finished(client, create(client, body)["id"])["search"]
    told = [t for t in search["trials"] if t["state"] == "warm_start"]
    earlier = [t for t in tpe_asha["search"]["trials"] if t["state"] == "complete"]
    assert sorted(t["value"] for t in told) == sorted(t["value"] for t in earlier)
    assert search["trials_started"] == 1


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"space": {"model.hidden_layers": {"choice": [[0]]}}}, "space.model.hidden_layers"),
        (
            {"space": {"training.learning_rate": {"float": {"low": 0.1, "high": 0.01}}}},
            "space.training.learning_rate.float",
        ),
        (
            {"space": {"training.learning_rate": {"float": {"low": 1e-4, "high": 1e-2}}}, "sampler": "grid"},
            "sampler",
        ),
        ({"grid": {"training.learning_rate": [0.1]}, "sampler": "tpe"}, "sampler"),
        ({"space": {"training.nope": {"choice": [1]}}}, "space.training.nope"),
        ({"space": {"training.learning_rate": RATES}, "warm_start": ["0" * 24]}, "warm_start"),
    ],
)
def test_a_search_that_cannot_run_is_a_422_naming_the_field(
    client: httpx.Client, body: dict[str, Any], field: str
) -> None:
    answer = client.post("/v1/studies", json={"base": BASE, **body})
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert field in [error["field"] for error in answer.json()["errors"]], answer.json()


def test_kjobs_dashboard_shows_the_search(tpe_asha: dict[str, Any], tmp_path: Path) -> None:
    port = free_port()
    command = [sys.executable, "-m", "cli.main", "dashboard", "--port", str(port)]
    with (tmp_path / "dashboard.log").open("wb") as log:
        dashboard = subprocess.Popen(command, stdout=log, stderr=log)
    try:

        def studies() -> list[dict[str, Any]] | None:
            try:
                answer = httpx.get(f"http://127.0.0.1:{port}/api/studies", timeout=5)
            except httpx.HTTPError:
                return None
            found: list[dict[str, Any]] = answer.json()["study_summaries"]
            return found

        listed = wait_for(studies, timeout=60, what="optuna-dashboard")
        shown = next(study for study in listed if study["study_name"] == tpe_asha["id"])
        assert shown["directions"] == ["maximize"]
    finally:
        stop(dashboard)
