"""``kjobs study`` on searches as a user runs it: a search submitted from YAML with its space,
sampler and pruner, shown while its trials wait and once it ended (its best trial, importances
and trials), its trials as CSV and its progress plot."""

import csv
import io
import re
from pathlib import Path
from typing import Any

import pytest

from client import KJobsClient, StudyView
from tests.cli.conftest import JOB_ID, Kjobs, write_yaml
from tests.helpers import tiny_spec, wait_for

BASE = tiny_spec(dataset={"train_limit": 300}, training={"epochs": 2, "batch_size": 32})


def field(stdout: str, name: str) -> str:
    """The value of a ``name  value`` line."""
    found = re.search(rf"^{name}\s{{2,}}(.*)$", stdout, re.MULTILINE)
    assert found, f"no field {name!r} in:\n{stdout}"
    return found.group(1)


def table(stdout: str, title: str) -> list[dict[str, str]]:
    """The rows of the table under ``title`` in piped output (tab-separated, ended by an empty line)."""
    _, found, rest = stdout.partition(f"\n\n{title}\n")
    assert found, f"no table {title!r} in:\n{stdout}"
    lines = rest.split("\n\n")[0].splitlines()
    return list(csv.DictReader(lines, delimiter="\t"))


def test_a_waiting_search_shows_its_sampler_pruner_and_queued_trials(
    kjobs_cli: Kjobs, tmp_path: Path
) -> None:
    request = {
        "name": "cli-search",
        "base": tiny_spec(resources={"queue": "gpu"}),
        "space": {"training.learning_rate": {"float": {"low": 1e-4, "high": 1e-2, "log": True}}},
        "sampler": {"type": "random", "seed": 7},
        "pruner": {"type": "asha", "min_epochs": 2},
        "max_trials": 5,
        "max_total_epochs": 30,
        "max_parallel": 2,
    }
    submitted = kjobs_cli("study", "submit", str(write_yaml(tmp_path / "search.yaml", request)))
    study_id = submitted.stdout.strip()
    assert JOB_ID.match(study_id), submitted.stderr

    shown = kjobs_cli("study", "show", study_id).stdout

    assert field(shown, "sampler") == "random (seed 7)"
    assert field(shown, "pruner") == "asha (min_epochs 2, reduction_factor 3)"
    assert field(shown, "end reason") == "still searching"
    assert (field(shown, "trials"), field(shown, "epochs")) == ("2 started of 5", "0 spent of 30")
    assert field(shown, "best trial") == "none yet"
    assert "Parameter importances" not in shown
    trials = table(shown, "Trials")
    assert [(row["trial"], row["state"], row["epochs"]) for row in trials] == [
        ("0", "queued", "0"),
        ("1", "queued", "0"),
    ]
    assert all(1e-4 <= float(row["training.learning_rate"]) <= 1e-2 for row in trials)
    assert all(JOB_ID.match(row["job"]) for row in trials)
    assert "Leaderboard" not in shown, "a search's trials stand for its leaderboard"
    assert "\x1b[" not in shown
    assert kjobs_cli("study", "cancel", study_id).stdout.strip() == f"{study_id} 2 cancelled"
    assert field(kjobs_cli("study", "show", study_id).stdout, "end reason") == "cancelled"


@pytest.mark.e2e
@pytest.mark.usefixtures("worker")
def test_an_ended_search_shows_its_best_trial_importances_and_trials(
    kjobs: KJobsClient, kjobs_cli: Kjobs, tmp_path: Path
) -> None:
    space = {
        "training.learning_rate": {"choice": [0.01, 0.001]},
        "model.hidden_layers": {"choice": [[16], [0], [32]]},
    }
    request = {"name": "cli-grid", "base": BASE, "space": space, "sampler": "grid"}
    study_id = kjobs_cli("study", "submit", str(write_yaml(tmp_path / "grid.yaml", request))).stdout.strip()

    def ended() -> StudyView | None:
        study = kjobs.get_study(study_id)
        return study if study.status == "completed" else None

    search = wait_for(ended, timeout=300, interval=0.5, what="the grid search to end").search
    assert search is not None
    assert search.best_trial is not None

    shown = kjobs_cli("study", "show", study_id).stdout

    assert (field(shown, "end reason"), field(shown, "trials")) == ("space_exhausted", "4 started of 20")
    best = search.best_trial
    assert field(shown, "best trial") == f"trial {best.number}: val_accuracy {best.value:.4f} after 2 epochs"
    assert field(shown, "best job") == best.job_id
    layers, rate = best.params["model.hidden_layers"], best.params["training.learning_rate"]
    assert field(shown, "best params") == f"model.hidden_layers={layers}, training.learning_rate={rate}"
    importances = {
        row["parameter"]: float(row["importance"]) for row in table(shown, "Parameter importances")
    }
    assert importances == pytest.approx(search.importances, abs=1e-4)
    trials = table(shown, "Trials")
    assert [row["state"] for row in trials] == [trial.state for trial in search.trials]
    invalid = [row for row in trials if row["state"] == "invalid"]
    assert [(row["model.hidden_layers"], row["job"]) for row in invalid] == [("[0]", "-")] * 2
    assert all("hidden_layers" in row["error"] for row in invalid)

    as_csv = kjobs_cli("study", "report", study_id, "--format", "trials-csv").stdout
    assert [row["state"] for row in csv.DictReader(io.StringIO(as_csv))] == [row["state"] for row in trials]
    assert "## Parameter importances" in kjobs_cli("study", "report", study_id).stdout
    image = tmp_path / "progress.png"
    assert kjobs_cli("study", "progress", study_id, "-o", str(image)).stdout.strip() == str(image)
    assert image.read_bytes()[:4] == b"\x89PNG"


def test_a_search_s_request_reaches_the_service_as_written(kjobs_cli: Kjobs, tmp_path: Path) -> None:
    request: dict[str, Any] = {"base": BASE, "space": {"training.nope": {"choice": [1]}}}
    refused = kjobs_cli("study", "submit", str(write_yaml(tmp_path / "bad.yaml", request)))
    assert refused.returncode == 4
    assert "space.training.nope" in refused.stderr
