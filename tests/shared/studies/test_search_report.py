"""A search in words: the report's sections and the trials as CSV, from a search as the API shows it."""

import csv
import io
from datetime import UTC, datetime
from typing import Any

from shared.models.search import PrunerOptions, SamplerOptions, SearchView, TrialView
from shared.models.studies import Objective, StudyRecord
from shared.studies.leaderboard import to_markdown
from shared.studies.search_report import params_text, pruner_text, sampler_text, trials_csv

OBJECTIVE = Objective(metric="val_accuracy", mode="max")


def trial(number: int, state: str, value: float | None, epochs: int, **extra: Any) -> TrialView:
    params = {"training.learning_rate": 0.003 * (number + 1), "model.hidden_layers": [16, 8]}
    fields = {"job_id": f"{number:024x}", "params": params, "error": None} | extra
    return TrialView.model_validate(
        {"number": number, "state": state, "value": value, "epochs": epochs, **fields}
    )


TRIALS = [
    trial(0, "complete", 0.75, 3),
    trial(1, "pruned", 0.5, 1),
    trial(2, "invalid", None, 0, job_id=None, error="model.hidden_layers.0: must be | at least 1\nor more"),
    trial(3, "complete", 0.8125, 3),
]
SEARCH = SearchView(
    sampler=SamplerOptions(type="tpe", seed=3, startup_trials=2),
    pruner=PrunerOptions(type="asha", min_epochs=1, reduction_factor=2),
    max_trials=6,
    max_total_epochs=None,
    trials_started=3,
    epochs_spent=7,
    end_reason="max_trials",
    best_trial=TRIALS[3],
    importances={"training.learning_rate": 0.9, "model.hidden_layers": 0.1},
    trials=TRIALS,
)
STUDY = StudyRecord(
    id="a" * 24,
    tenant="t",
    name="lr-search",
    objective=OBJECTIVE,
    max_parallel=1,
    jobs=[],
    created_at=datetime(2025, 1, 1, tzinfo=UTC),
)


def section(markdown: str, heading: str) -> list[str]:
    """The non-empty lines under ``## heading``, up to the next heading."""
    _, found, rest = markdown.partition(f"\n## {heading}\n")
    assert found, f"no section {heading!r} in:\n{markdown}"
    return [line for line in rest.split("\n## ")[0].splitlines() if line]


def test_the_report_of_a_search_has_its_summary_best_trial_importances_and_trials() -> None:
    markdown = to_markdown(STUDY, [], SEARCH)

    assert markdown.startswith("# lr-search\n\nA search for the best val_accuracy (max) of each trial.\n")
    assert section(markdown, "Search") == [
        "- Sampler: tpe (seed 3, startup_trials 2)",
        "- Pruner: asha (min_epochs 1, reduction_factor 2)",
        "- End reason: max_trials",
        "- Trials: 3 started of 6",
        "- Epochs: 7 spent (no budget)",
    ]
    assert section(markdown, "Best trial") == [
        f"Trial 3: val_accuracy 0.8125 after 3 epochs (job `{3:024x}`).",
        "| parameter | value |",
        "| --- | --- |",
        "| model.hidden_layers | [16, 8] |",
        "| training.learning_rate | 0.012 |",
    ]
    assert section(markdown, "Parameter importances")[2:] == [
        "| training.learning_rate | 0.9000 |",
        "| model.hidden_layers | 0.1000 |",
    ]
    header, _, *rows = section(markdown, "Trials")
    assert header == (
        "| number | state | value | epochs | model.hidden_layers | training.learning_rate | job_id | error |"
    )
    assert rows[1] == f"| 1 | pruned | 0.5000 | 1 | [16, 8] | 0.006 | {1:024x} |  |"
    assert rows[2] == (
        "| 2 | invalid | - | 0 | [16, 8] | 0.009 |  | model.hidden_layers.0: must be \\| at least 1 or more |"
    )
    assert section(markdown, "Leaderboard")[0] == "Ranked by the best val_accuracy (max) over the epochs."


def test_a_search_without_completed_trials_says_so() -> None:
    young = SEARCH.model_copy(
        update={
            "best_trial": None,
            "importances": {},
            "trials": [],
            "end_reason": None,
            "max_total_epochs": 12,
        }
    )
    markdown = to_markdown(STUDY, [], young)
    assert section(markdown, "Best trial") == ["None yet: no trial has completed."]
    assert section(markdown, "Parameter importances") == [
        "None yet: they come once two trials have completed (fANOVA)."
    ]
    assert section(markdown, "Trials") == ["None yet."]
    assert "- End reason: still searching" in markdown
    assert "- Epochs: 7 spent of 12" in markdown


def test_a_study_of_variants_keeps_its_report_and_has_no_trials() -> None:
    markdown = to_markdown(STUDY, [])
    assert markdown.splitlines()[:3] == [
        "# lr-search",
        "",
        "Ranked by the best val_accuracy (max) over the epochs.",
    ]
    assert "## " not in markdown
    assert trials_csv(None) == "number,state,value,epochs,job_id,error\r\n"


def test_the_trials_as_csv_have_a_column_per_parameter() -> None:
    rows = list(csv.DictReader(io.StringIO(trials_csv(SEARCH))))
    assert [row["number"] for row in rows] == ["0", "1", "2", "3"]
    assert rows[3] == {
        "number": "3",
        "state": "complete",
        "value": "0.8125",
        "epochs": "3",
        "job_id": f"{3:024x}",
        "error": "",
        "training.learning_rate": "0.012",
        "model.hidden_layers": "[16, 8]",
    }
    assert rows[2]["job_id"] == ""
    assert rows[2]["error"].startswith("model.hidden_layers.0")


def test_samplers_pruners_and_points_read_as_words() -> None:
    assert sampler_text(SamplerOptions(type="random")) == "random"
    assert sampler_text(SamplerOptions(type="qmc", seed=1, startup_trials=4)) == "qmc (seed 1)"
    assert pruner_text(PrunerOptions(type="median")) == "median (min_epochs 1, startup_trials 5)"
    assert pruner_text(PrunerOptions(type="none")) == "none"
    assert params_text({"training.optimizer": "adam", "training.learning_rate": 1e-7}) == (
        "training.learning_rate=1e-07, training.optimizer=adam"
    )
