"""Every benchmark in turn, each in a process of its own, with the machine they ran on.

    .venv/bin/python -m bench.run_all            # the full run, about 12 minutes on 2 cores
    .venv/bin/python -m bench.run_all --quick    # small sizes, to check that everything runs

Figures go to bench/results/*.json; the load average before and after each benchmark goes to
bench/results/run.json, since a busy machine makes every figure slower and noisier.
"""

import argparse
import json
import os
import subprocess
import sys
import time
from typing import Any

from bench.harness import RESULTS_DIR, machine, print_table

FULL: dict[str, list[str]] = {
    "training_overhead": [],
    "api_load": [],
    "latency": [],
    "scale": [],
    "input_pipeline": [],
}
QUICK: dict[str, list[str]] = {
    "training_overhead": ["--pairs", "1", "--train-limit", "3000", "--epochs", "2"],
    "api_load": ["--seconds", "2", "--connections", "1,16", "--rounds", "1"],
    "latency": ["--submissions", "3", "--epochs", "3"],
    "scale": ["--jobs", "500", "--requests", "30"],
    "input_pipeline": ["--runs", "1", "--epochs", "2", "--train-limit", "3000"],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run, not figures")
    parser.add_argument("only", nargs="*", help="run only these benchmarks")
    args = parser.parse_args()
    plan = QUICK if args.quick else FULL
    names = args.only or list(plan)
    started = time.perf_counter()
    print(json.dumps(machine(), indent=2), flush=True)
    log: dict[str, dict[str, Any]] = {}
    for name in names:
        load_before = os.getloadavg()
        began = time.perf_counter()
        print(f"\n=== {name} (load average {load_before[0]:.2f}) ===", flush=True)
        code = subprocess.call([sys.executable, "-m", f"bench.{name}", *plan[name]])
        log[name] = {
            "exit_code": code,
            "seconds": round(time.perf_counter() - began, 1),
            "load_average_before": [round(x, 2) for x in load_before],
            "load_average_after": [round(x, 2) for x in os.getloadavg()],
        }
    print_table(
        f"Benchmarks run in {time.perf_counter() - started:.0f} s",
        ["benchmark", "exit code", "seconds", "load before (1 min)", "load after (1 min)"],
        [
            [
                name,
                entry["exit_code"],
                entry["seconds"],
                entry["load_average_before"][0],
                entry["load_average_after"][0],
            ]
            for name, entry in log.items()
        ],
    )
    if not args.quick:
        RESULTS_DIR.mkdir(parents=True, exist_ok=True)
        (RESULTS_DIR / "run.json").write_text(
            json.dumps({"machine": machine(), "benchmarks": log}, indent=2) + "\n"
        )
    sys.exit(max((int(entry["exit_code"]) for entry in log.values()), default=0))


if __name__ == "__main__":
    main()
