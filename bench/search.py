"""Searching a space through the service: random search against TPE with ASHA on the same total
epoch budget, several seeds each (the best validation accuracy each reaches, and the epochs each
spends to come within 0.2 points of the best any found); and a study's overhead, measured as Ray
measures Tune's: a study of many one-epoch tiny trials, its wall time against the sum of its
trials' training times shared out over the workers.

    DATASETS_DIR=../shared/datasets .venv/bin/python -m bench.search [--part compare|overhead]
        [--seeds 1,2,3] [--budget 200] [--train-limit 6000] [--trial-epochs 9] [--workers 2]

It starts its own Redis, API and workers (bench/harness.py) and goes through the API only:
``POST /v1/studies`` with a space, the study read until it completes, then every trial's job
and its epoch records.
"""

import argparse
import json
import statistics
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

from bench.harness import Stack, print_table, stack, write_results
from bench.search_analysis import (
    TOLERANCE,
    Epoch,
    follow_ups,
    overhead,
    progress,
    quarters,
    reach,
    where_time_went,
)
from bench.search_client import TERMINAL, create_study, follow, read_trials, summary_seconds

WIDTHS = (64, 128, 256, 500)
DEPTH = 2
# The article's network is 784-500x5-10; two hidden layers of a width the search picks keep an
# epoch on this subset at 0.2 to 0.5 s on two cores, where five of 500 take about 1 s.
SPACE: dict[str, Any] = {
    "training.learning_rate": {"float": {"low": 1e-4, "high": 1e-1, "log": True}},
    "regularization.l2": {"float": {"low": 1e-6, "high": 1e-2, "log": True}},
    "regularization.dropout": {"float": {"low": 0.0, "high": 0.6}},
    "model.hidden_layers": {"choice": [[width] * DEPTH for width in WIDTHS]},
}
ASHA = {"type": "asha", "min_epochs": 1, "reduction_factor": 3}
METHODS: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "random": ({"type": "random"}, {"type": "none"}),
    "tpe_asha": ({"type": "tpe"}, ASHA),
    "tpe": ({"type": "tpe"}, {"type": "none"}),
    "random_asha": ({"type": "random"}, ASHA),
}
SLOWER, FASTER = "random", "tpe_asha"
CONTEXT_TOLERANCES = (0.005, 0.01)
# One epoch of the tests' tiny spec: about a second, mostly Keras building its training step.
TINY: dict[str, Any] = {
    "dataset": {"name": "mnist", "train_limit": 600},
    "model": {"hidden_layers": [32]},
    "training": {"epochs": 1, "batch_size": 32},
}
TINY_SPACE = {"training.learning_rate": {"float": {"low": 1e-3, "high": 3e-2, "log": True}}}


def search_base(train_limit: int, trial_epochs: int) -> dict[str, Any]:
    """What every trial of the comparison starts from: the subset, the batch and the epochs."""
    return {
        "name": "search",
        "dataset": {"name": "mnist", "train_limit": train_limit},
        "training": {"epochs": trial_epochs, "batch_size": 128},
    }


def study_body(method: str, seed: int, args: argparse.Namespace) -> dict[str, Any]:
    """A search of the space by ``method`` with the sampler's ``seed``, ended by the budget."""
    sampler, pruner = METHODS[method]
    return {
        "name": f"{method}-seed{seed}",
        "base": search_base(args.train_limit, args.trial_epochs),
        "space": SPACE,
        "sampler": {**sampler, "seed": seed},
        "pruner": pruner,
        "max_trials": 1000,
        "max_total_epochs": args.budget,
        "max_parallel": args.workers,
        "objective": {"metric": "val_accuracy", "mode": "max"},
    }


def run_search(client: httpx.Client, method: str, seed: int, args: argparse.Namespace) -> dict[str, Any]:
    """One search followed to its end; its trials, progress and what a check of them found."""
    study_id, created = create_study(client, study_body(method, seed, args))
    followed = follow(client, study_id, args.poll_seconds, args.timeout)
    search = followed.view["search"]
    data = read_trials(client, followed.view)
    problems = list(data.problems)
    if followed.completed is None:
        problems.append(f"did not complete within {args.timeout:.0f} s")
    if search["end_reason"] != "epoch_budget":
        problems.append(f"ended for {search['end_reason']}, not its epoch budget")
    if search["epochs_spent"] > args.budget:
        problems.append(f"spent {search['epochs_spent']} epochs of a budget of {args.budget}")
    states = Counter(trial["state"] for trial in search["trials"])
    if METHODS[method][1]["type"] == "asha" and not states["pruned"]:
        problems.append("ASHA pruned no trial")
    pruned_last = [
        t["number"] for t in search["trials"] if t["state"] == "pruned" and t["epochs"] >= args.trial_epochs
    ]
    if pruned_last:
        problems.append(f"trials pruned at their last epoch: {pruned_last}")
    ended = max((t.ended for t in data.times), default=followed.completed or time.time())
    points = progress(data.epochs, created)
    return {
        "method": method,
        "seed": seed,
        "study_id": study_id,
        "end_reason": search["end_reason"],
        "trials": search["trials_started"],
        "states": dict(states),
        "pruned_at_epochs": dict(Counter(t["epochs"] for t in search["trials"] if t["state"] == "pruned")),
        "epochs_spent": search["epochs_spent"],
        "best_val_accuracy": points[-1][1] if points else None,
        "its_test_accuracy": data.test_accuracy.get(best_trial(data.epochs)),
        "best_trial": {k: search["best_trial"][k] for k in ("number", "params", "value", "epochs")}
        if search["best_trial"]
        else None,
        "wall_seconds": round(ended - created, 1),
        "progress": points,
        "per_trial_seconds": where_time_went(created, data.times),
        "follow_up_seconds": quarters(follow_ups(data.times)),
        "study_reads": summary_seconds(followed.read_seconds),
        "problems": problems,
    }


def best_trial(epochs: list[Epoch]) -> int:
    """The trial of the best validation accuracy of all (-1 for none)."""
    scored = [e for e in epochs if e.val_accuracy is not None]
    return max(scored, key=lambda e: e.val_accuracy or 0.0).trial if scored else -1


def compare(bench: Stack, args: argparse.Namespace) -> dict[str, Any]:
    """Every method on every seed, methods alternated seed by seed; the runs and the reach."""
    runs: list[dict[str, Any]] = []
    with bench.client(timeout=120) as client:
        warm_up(client, args)
        for seed in args.seeds:
            for method in args.methods:
                run = run_search(client, method, seed, args)
                print(
                    f"{method} seed {seed}: {run['trials']} trials {run['states']}, {run['epochs_spent']} "
                    f"epochs, best {run['best_val_accuracy']}, {run['wall_seconds']} s, "
                    f"problems {run['problems'] or 'none'}",
                    flush=True,
                )
                runs.append(run)
    return {"runs": runs, "reach": reach_all(runs, args.methods, args.budget)}


def reach_all(runs: list[dict[str, Any]], methods: list[str], budget: int) -> list[dict[str, object]]:
    """Each tolerance's epochs to reach, per method, over ``runs``."""
    by_method = {m: [run["progress"] for run in runs if run["method"] == m] for m in methods}
    return [reach(by_method, t, budget, SLOWER, FASTER) for t in (TOLERANCE, *CONTEXT_TOLERANCES)]


def pooled(paths: list[Path], methods: list[str]) -> dict[str, Any]:
    """The runs of earlier results files, judged together: each file's runs (a seed run twice in
    two files is two runs: training is not deterministic); a file pooled already counts its own."""
    runs: dict[tuple[str, str, int], dict[str, Any]] = {}
    budgets = set()
    for path in paths:
        earlier = json.loads(path.read_text())
        budgets.add(earlier["settings"]["budget"])
        runs.update(
            {
                (run.get("file", path.name), run["method"], run["seed"]): run
                for run in earlier["compare"]["runs"]
            }
        )
    if len(budgets) != 1:
        sys.exit(f"the files ran on different budgets: {sorted(budgets)}")
    chosen = [{**run, "file": key[0]} for key, run in runs.items() if run["method"] in methods]
    return {
        "pooled": [path.name for path in paths],
        "runs": chosen,
        "reach": reach_all(chosen, methods, budgets.pop()),
    }


def warm_up(client: httpx.Client, args: argparse.Namespace) -> None:
    """One one-epoch job per worker, so that no search pays for a worker's first job."""
    spec = {**search_base(args.train_limit, 1), "model": {"hidden_layers": [64] * DEPTH}}
    ids = [client.post("/v1/jobs", json=spec).raise_for_status().json()["id"] for _ in range(args.workers)]
    for job_id in ids:
        while client.get(f"/v1/jobs/{job_id}").json()["status"] not in TERMINAL:
            time.sleep(0.2)


def measure_overhead(bench: Stack, args: argparse.Namespace) -> dict[str, Any]:
    """A study of ``--overhead-trials`` one-epoch tiny trials, as many in parallel as workers:
    its wall time from creation to its last trial's ending against the ideal."""
    body = {
        "name": "overhead",
        "base": TINY,
        "space": TINY_SPACE,
        "sampler": {"type": args.overhead_sampler, "seed": 0},
        "pruner": "none",
        "max_trials": args.overhead_trials,
        "max_parallel": args.workers,
    }
    with bench.client(timeout=120) as client:
        study_id, created = create_study(client, body)
        followed = follow(client, study_id, args.overhead_poll_seconds, args.timeout)
        data = read_trials(client, followed.view)
    ended = max(t.ended for t in data.times)
    figures = overhead(created, ended, data.times, args.workers)
    return {
        "study_id": study_id,
        "sampler": args.overhead_sampler,
        "trials": followed.view["search"]["trials_started"],
        "end_reason": followed.view["search"]["end_reason"],
        "states": dict(Counter(t["state"] for t in followed.view["search"]["trials"])),
        "workers": args.workers,
        **figures,
        "seen_completed_after_seconds": round(followed.completed - created, 2)
        if followed.completed
        else None,
        "epoch_seconds_median": round(statistics.median(t.train_seconds for t in data.times), 3),
        "per_trial_seconds": where_time_went(created, data.times),
        "follow_up_seconds": quarters(follow_ups(data.times)),
        "study_reads": summary_seconds(followed.read_seconds),
        "problems": data.problems,
    }


def print_compare(figures: dict[str, Any]) -> None:
    """The runs, then each tolerance's epochs to reach per method and the saving."""
    main = figures["reach"][0]
    rows, seen = [], Counter[str]()
    for run in figures["runs"]:
        reached = main["epochs_to_reach"][run["method"]][seen[run["method"]]]
        seen[run["method"]] += 1
        rows.append(
            [
                run["method"],
                run["seed"],
                run["trials"],
                run["states"].get("pruned", 0),
                run["epochs_spent"],
                run["best_val_accuracy"],
                "never" if reached is None else reached,
                run["wall_seconds"],
            ]
        )
    print_table(
        f"Searches (best of all {main['best']:.4f}; epochs to reach {main['target']:.4f})",
        ["method", "seed", "trials", "pruned", "epochs", "best val acc", "epochs to reach", "wall s"],
        rows,
    )
    print_table(
        f"Epochs to come within a tolerance of the best ({SLOWER} / {FASTER})",
        ["tolerance (points)", *[f"median {m}" for m in main["median"]], "saving"],
        [
            [
                entry["tolerance"] * 100,
                *["never" if v is None else v for v in entry["median"].values()],
                ("at least " if entry["saving_is_lower_bound"] else "") + str(entry["saving"]),
            ]
            for entry in figures["reach"]
        ],
    )


def print_overhead(figures: dict[str, Any]) -> None:
    """The overhead's figures and where a trial's time went."""
    print_table(
        "Study overhead (ideal: the sum shared out over the workers)",
        [
            "trials",
            "workers",
            "wall s",
            "training s",
            "ideal s",
            "overhead %",
            "jobs s",
            "ideal s",
            "overhead %",
        ],
        [
            [
                figures[k]
                for k in (
                    "trials",
                    "workers",
                    "wall_seconds",
                    "train_seconds",
                    "ideal_seconds",
                    "overhead_percent",
                    "job_seconds",
                    "ideal_job_seconds",
                    "overhead_over_jobs_percent",
                )
            ]
        ],
    )
    print_table("Mean seconds per trial", ["part", "s"], list(figures["per_trial_seconds"].items()))
    print_table(
        "From a trial's ending to its successor's creation (tell, ask, store, send)",
        ["trials", "mean s", "first quarter s", "last quarter s"],
        [[figures["trials"], *figures["follow_up_seconds"].values()]],
    )


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--part",
        choices=("all", "compare", "overhead", "pool"),
        default="all",
        help="pool: no runs, the runs of the --pool files judged together",
    )
    parser.add_argument("--pool", type=Path, nargs="*", default=[], help="results files, for --part pool")
    parser.add_argument("--name", default="search", help="the results file: bench/results/NAME.json")
    parser.add_argument("--seeds", type=lambda s: [int(x) for x in s.split(",")], default=[1, 2, 3])
    parser.add_argument(
        "--methods", type=lambda s: s.split(","), default=[SLOWER, FASTER], help=f"of {', '.join(METHODS)}"
    )
    parser.add_argument("--budget", type=int, default=200, help="each search's max_total_epochs")
    parser.add_argument("--train-limit", type=int, default=6000, help="MNIST training images (70:30 split)")
    parser.add_argument("--trial-epochs", type=int, default=9, help="the most epochs a trial trains")
    parser.add_argument("--workers", type=int, default=2, help="workers, and every study's max_parallel")
    parser.add_argument("--overhead-trials", type=int, default=200)
    parser.add_argument("--overhead-sampler", choices=("tpe", "random"), default="tpe")
    parser.add_argument("--poll-seconds", type=float, default=2.0, help="between reads of a search")
    parser.add_argument("--overhead-poll-seconds", type=float, default=5.0)
    parser.add_argument("--timeout", type=float, default=1800, help="seconds a study may take")
    args = parser.parse_args()
    unknown = set(args.methods) - set(METHODS)
    if unknown:
        parser.error(f"unknown methods {sorted(unknown)}")
    return args


def main() -> None:
    args = parse_args()
    started = time.perf_counter()
    figures: dict[str, Any] = {
        "settings": {k: v for k, v in vars(args).items() if k != "pool"},  # pooled files by name below
        "space": SPACE,
        "methods": {m: {"sampler": METHODS[m][0], "pruner": METHODS[m][1]} for m in args.methods},
    }
    if args.part == "pool":
        figures["compare"] = pooled(args.pool, args.methods)
        print_compare(figures["compare"])
        write_results(args.name, figures)
        return
    with stack(worker=True, workers=args.workers) as bench:
        if args.part in ("all", "compare"):
            figures["compare"] = compare(bench, args)
            print_compare(figures["compare"])
        if args.part in ("all", "overhead"):
            figures["overhead"] = measure_overhead(bench, args)
            print_overhead(figures["overhead"])
    figures["run_seconds"] = round(time.perf_counter() - started, 1)
    print(f"done in {figures['run_seconds']:.0f} s", flush=True)
    write_results(args.name, figures)


if __name__ == "__main__":
    main()
