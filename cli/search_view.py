"""How ``kjobs study show`` prints a search: its budgets and best trial as fields, then its
parameters' importances and its trials as tables."""

from collections.abc import Sequence

from cli.output import print_rows
from shared.models.search import SearchView, TrialView
from shared.models.studies import Objective
from shared.studies.search_report import (
    best_text,
    end_text,
    epochs_text,
    param_names,
    param_text,
    params_text,
    pruner_text,
    sampler_text,
    trials_text,
)


def search_fields(search: SearchView, objective: Objective) -> list[tuple[str, object]]:
    """The search's summary and its best trial, as ``name value`` pairs."""
    pairs: list[tuple[str, object]] = [
        ("sampler", sampler_text(search.sampler)),
        ("pruner", pruner_text(search.pruner)),
        ("end reason", end_text(search)),
        ("trials", trials_text(search)),
        ("epochs", epochs_text(search)),
    ]
    best = search.best_trial
    if best is None:
        return [*pairs, ("best trial", "none yet")]
    return [
        *pairs,
        ("best trial", best_text(best, objective)),
        ("best params", params_text(best.params)),
        ("best job", best.job_id),
    ]


def print_search_tables(search: SearchView) -> None:
    """The importances (once there are some) and the trials, each a table with its title."""
    if search.importances:
        ranked = list(search.importances.items())
        print_rows(("parameter", "importance"), ranked, title="Parameter importances")
    params = param_names(search.trials)
    with_errors = any(trial.error for trial in search.trials)
    columns = ["trial", "state", "value", "epochs", *params, "job"] + (["error"] if with_errors else [])
    rows = [trial_row(trial, params, with_errors) for trial in search.trials]
    print_rows(columns, rows, title="Trials", whole=("job",))


def trial_row(trial: TrialView, params: Sequence[str], with_error: bool) -> list[object]:
    """One trial's cells: a parameter it did not try is ``-``."""
    point = [param_text(trial.params[path]) if path in trial.params else None for path in params]
    row: list[object] = [trial.number, trial.state, trial.value, trial.epochs, *point, trial.job_id]
    return [*row, trial.error] if with_error else row
