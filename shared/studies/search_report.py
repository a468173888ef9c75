"""What a search shows in words: its summary, best trial, importances and trials, for the study's
Markdown report, its trials as CSV, and the command line's ``kjobs study show``."""

import csv
import io
import json
from collections.abc import Sequence
from typing import Any

from shared.models.search import PrunerOptions, SamplerOptions, SearchView, TrialView
from shared.models.studies import Objective

TRIAL_COLUMNS = ["number", "state", "value", "epochs", "job_id", "error"]
"""The trials CSV's first columns; one column per searched parameter follows them."""
# Which options change what each pruner does (the others are stored with their defaults).
PRUNER_OPTIONS = {
    "median": ("min_epochs", "startup_trials"),
    "asha": ("min_epochs", "reduction_factor"),
    "hyperband": ("min_epochs", "reduction_factor"),
    "none": (),
}


def param_text(value: Any) -> str:
    """A parameter's value as people read it: ``0.003``, ``1e-07``, ``[128, 64]``, ``adam``."""
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, str):
        return value
    return json.dumps(value)


def params_text(params: dict[str, Any]) -> str:
    """``model.hidden_layers=[16], training.learning_rate=0.003``, by path."""
    return ", ".join(f"{path}={param_text(params[path])}" for path in sorted(params))


def value_text(value: float | None) -> str:
    """An objective's value as the leaderboard shows it; ``-`` for none."""
    return "-" if value is None else f"{value:.4f}"


def sampler_text(sampler: SamplerOptions) -> str:
    """``tpe (seed 3, startup_trials 2)``: the sampler and the options given."""
    options = {"seed": sampler.seed}
    if sampler.type == "tpe":
        options["startup_trials"] = sampler.startup_trials
    return _with_options(sampler.type, {name: value for name, value in options.items() if value is not None})


def pruner_text(pruner: PrunerOptions) -> str:
    """``asha (min_epochs 1, reduction_factor 2)``: the pruner and the options it uses."""
    return _with_options(pruner.type, {name: getattr(pruner, name) for name in PRUNER_OPTIONS[pruner.type]})


def _with_options(name: str, options: dict[str, object]) -> str:
    shown = ", ".join(f"{option} {value}" for option, value in options.items())
    return f"{name} ({shown})" if shown else name


def trials_text(search: SearchView) -> str:
    """``4 started of 20``."""
    return f"{search.trials_started} started of {search.max_trials}"


def epochs_text(search: SearchView) -> str:
    """``10 spent of 12``, or ``10 spent (no budget)``."""
    budget = search.max_total_epochs
    return f"{search.epochs_spent} spent " + (f"of {budget}" if budget else "(no budget)")


def end_text(search: SearchView) -> str:
    """Why the search ended, or that it goes on."""
    return search.end_reason or "still searching"


def best_text(best: TrialView, objective: Objective) -> str:
    """``trial 3: val_accuracy 0.8125 after 3 epochs``."""
    return f"trial {best.number}: {objective.metric} {value_text(best.value)} after {best.epochs} epochs"


def param_names(trials: Sequence[TrialView]) -> list[str]:
    """Every parameter the trials tried, by path (Optuna keeps a trial's in no fixed order)."""
    return sorted({path for trial in trials for path in trial.params})


def trials_csv(search: SearchView | None) -> str:
    """The trials as CSV: number, state, value, epochs, job_id, error, then each parameter (a
    list or an object as JSON). A study of variants has no trials: the header alone."""
    trials = search.trials if search else []
    params = param_names(trials)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(TRIAL_COLUMNS + params)
    for trial in trials:
        fixed = [trial.number, trial.state, trial.value, trial.epochs, trial.job_id, trial.error]
        shown = ["" if value is None else value for value in fixed]
        writer.writerow(shown + [param_text(trial.params[p]) if p in trial.params else "" for p in params])
    return out.getvalue()


def search_markdown(search: SearchView, objective: Objective) -> list[str]:
    """The search's sections of the report: summary, best trial, importances and trials."""
    summary = [
        ("Sampler", sampler_text(search.sampler)),
        ("Pruner", pruner_text(search.pruner)),
        ("End reason", end_text(search)),
        ("Trials", trials_text(search)),
        ("Epochs", epochs_text(search)),
    ]
    lines = ["## Search", "", *(f"- {name}: {value}" for name, value in summary), ""]
    lines += ["## Best trial", "", *_best(search.best_trial, objective), ""]
    lines += ["## Parameter importances", "", *_importances(search.importances), ""]
    return [*lines, "## Trials", "", *_trials(search.trials), ""]


def _best(best: TrialView | None, objective: Objective) -> list[str]:
    if best is None:
        return ["None yet: no trial has completed."]
    job = f" (job `{best.job_id}`)" if best.job_id else ""
    rows = [(path, param_text(best.params[path])) for path in sorted(best.params)]
    sentence = best_text(best, objective)
    return [sentence[0].upper() + sentence[1:] + job + ".", "", *table(["parameter", "value"], rows)]


def _importances(importances: dict[str, float]) -> list[str]:
    if not importances:
        return ["None yet: they come once two trials have completed (fANOVA)."]
    rows = [(path, f"{value:.4f}") for path, value in importances.items()]
    return table(["parameter", "importance"], rows)


def _trials(trials: Sequence[TrialView]) -> list[str]:
    if not trials:
        return ["None yet."]
    params = param_names(trials)
    rows = [
        (
            t.number,
            t.state,
            value_text(t.value),
            t.epochs,
            *(param_text(t.params[p]) if p in t.params else "" for p in params),
            t.job_id or "",
            t.error or "",
        )
        for t in trials
    ]
    return table(["number", "state", "value", "epochs", *params, "job_id", "error"], rows)


def table(columns: Sequence[str], rows: Sequence[Sequence[object]]) -> list[str]:
    """A Markdown table, each cell's pipes escaped and its line breaks made spaces."""
    lines = ["| " + " | ".join(markdown_cell(column) for column in columns) + " |"]
    lines.append("|" + " --- |" * len(columns))
    lines += ["| " + " | ".join(markdown_cell(value) for value in row) + " |" for row in rows]
    return lines


def markdown_cell(value: object) -> str:
    """A value as one Markdown table cell."""
    return " ".join(str(value).split()).replace("|", "\\|")
