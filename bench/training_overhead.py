"""Training overhead: one spec (the article's 784-500x5-10 network on MNIST) as a job through a
running service (the API and one warm solo worker) and as a plain Keras script in this process,
on the same data split and seed, alternated A B A B.

The service's time runs from its ``running`` transition to its final one, as the job's
transitions record them: data split, model build, fit with a checkpoint and a record per
epoch, the test evaluation and the saved model. The plain time covers the same work done the
plain way: split, build (with the worker's own model builder), fit, evaluate, save.

    .venv/bin/python -m bench.training_overhead [--pairs 3] [--train-limit 20000] [--epochs 5]
"""

import argparse
import statistics
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, overload

import httpx

from bench.harness import datasets_dir, print_table, stack, write_results
from shared.models.spec import JobSpec

TERMINAL = ("succeeded", "failed", "cancelled")


@overload
def service_seconds(client: httpx.Client, body: dict[str, Any]) -> float: ...
@overload
def service_seconds(
    client: httpx.Client, body: dict[str, Any], with_id: Literal[True]
) -> tuple[float, str]: ...
def service_seconds(client: httpx.Client, body: dict[str, Any], with_id: bool = False) -> Any:
    """Submit, wait for the end, and return running-to-final from the job's transitions (and
    the job's id, ``with_id``)."""
    job_id = client.post("/v1/jobs", json=body).raise_for_status().json()["id"]
    while True:
        job = client.get(f"/v1/jobs/{job_id}").raise_for_status().json()
        if job["status"] in TERMINAL:
            break
        time.sleep(0.5)
    if job["status"] != "succeeded":
        raise SystemExit(f"the job {job_id} ended {job['status']}: {job.get('error')}")
    at = {t["status"]: datetime.fromisoformat(t["at"]) for t in job["transitions"]}
    seconds = (at["succeeded"] - at["running"]).total_seconds()
    return (seconds, job_id) if with_id else seconds


def plain_seconds(spec: JobSpec, arrays: Any, folder: Path) -> float:
    """The same training as a plain script: split, build, fit, evaluate, save."""
    import keras

    from worker.data import split_dataset
    from worker.model import builtin_model, compile_model

    started = time.perf_counter()
    keras.utils.set_random_seed(spec.training.seed)
    split = split_dataset(arrays, spec.dataset.validation_split, spec.dataset.train_limit, spec.training.seed)
    model = builtin_model(spec)
    compile_model(model, spec, "classification")
    model.fit(
        split.x_train,
        split.y_train,
        batch_size=spec.training.batch_size,
        epochs=spec.training.epochs,
        validation_data=(split.x_val, split.y_val),
        verbose=0,
    )
    model.evaluate(split.x_test, split.y_test, batch_size=1024, verbose=0)
    model.save(folder / "model.keras")
    return time.perf_counter() - started


def checkpoint_seconds(spec: JobSpec, arrays: Any, folder: Path, repeats: int = 3) -> float:
    """Seconds one per-epoch checkpoint of this network takes, written as the worker writes it
    (the model with its optimizer state, synced to disk, renamed into place)."""
    import keras

    from shared.storage.local import LocalStore
    from worker.checkpoints import Checkpoint, Checkpointer
    from worker.data import split_dataset
    from worker.model import builtin_model, compile_model

    split = split_dataset(arrays, spec.dataset.validation_split, 1024, spec.training.seed)
    keras.utils.set_random_seed(spec.training.seed)
    model = builtin_model(spec)
    compile_model(model, spec, "classification")
    model.fit(split.x_train, split.y_train, batch_size=spec.training.batch_size, epochs=1, verbose=0)
    checkpointer = Checkpointer(LocalStore(folder), "0" * 24, 1)
    times = []
    for epoch in range(1, repeats + 1):
        started = time.perf_counter()
        checkpointer.save(epoch, Checkpoint(model, {"elapsed_seconds": 0.0}, None))
        times.append(time.perf_counter() - started)
        checkpointer.prune(epoch)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--train-limit", type=int, default=20_000)
    parser.add_argument("--epochs", type=int, default=5)
    args = parser.parse_args()
    body = {
        "preset": "baseline",
        "dataset": {"name": "mnist", "train_limit": args.train_limit},
        "training": {"epochs": args.epochs},
    }
    spec = JobSpec.model_validate({k: v for k, v in body.items() if k != "preset"})
    warm_up = {**body, "training": {"epochs": 1}}
    from worker.data import read_idx_dataset

    arrays = read_idx_dataset(datasets_dir(), "mnist")
    pairs: list[dict[str, float]] = []
    with stack(worker=True) as bench, bench.client() as client, tempfile.TemporaryDirectory() as folder:
        # Both sides warm up once: the worker reads MNIST into its cache, this process loads Keras.
        service_seconds(client, warm_up)
        plain_seconds(
            JobSpec.model_validate({k: v for k, v in warm_up.items() if k != "preset"}), arrays, Path(folder)
        )
        for index in range(args.pairs):
            service = service_seconds(client, body)
            plain = plain_seconds(spec, arrays, Path(folder))
            pairs.append(
                {
                    "service_s": round(service, 2),
                    "plain_s": round(plain, 2),
                    "ratio": round(service / plain, 3),
                }
            )
            print(f"pair {index + 1}: {pairs[-1]}", flush=True)
        checkpoint = checkpoint_seconds(spec, arrays, Path(folder))
    total_ratio = sum(p["service_s"] for p in pairs) / sum(p["plain_s"] for p in pairs)
    median_ratio = statistics.median(p["ratio"] for p in pairs)
    print_table(
        f"Training overhead: 784-500x5-10, {args.train_limit} MNIST images, {args.epochs} epochs",
        ["pair", "service s", "plain s", "ratio"],
        [[i + 1, p["service_s"], p["plain_s"], p["ratio"]] for i, p in enumerate(pairs)],
    )
    print(f"ratio of the sums {total_ratio:.3f}, median ratio {median_ratio:.3f} (target: at most 1.05)")
    print(f"one per-epoch checkpoint of this network takes {checkpoint:.2f} s ({args.epochs} per job)")
    write_results(
        "training_overhead",
        {
            "submission": body,
            "pairs": pairs,
            "ratio_of_sums": round(total_ratio, 3),
            "median_ratio": round(median_ratio, 3),
            "checkpoint_seconds": round(checkpoint, 3),
        },
    )


if __name__ == "__main__":
    main()
