"""The convnet preset on the full MNIST: through a running service (the API and one warm solo
worker) and as a plain Keras 3 script of the same network (Keras's "simple MNIST convnet") on
the same split and seed, one after the other. Prints the test accuracy, the mean epoch time
after the first, and the service-to-plain time ratio, and writes them to
``bench/results/convnet.json``.

As in the case study, the service's time runs from its ``running`` transition to its final one
(data, model, per-epoch checkpoints and records, the test evaluation and the saved model), and
the plain time is ``fit`` plus ``evaluate``.

    DATASETS_DIR=../shared/datasets .venv/bin/python -m bench.convnet [--epochs 15]
"""

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from bench.harness import datasets_dir, print_table, stack, write_results
from bench.training_overhead import service_seconds
from shared.models.presets import PRESETS

TARGET_ACCURACY = 0.99


def service_run(client: httpx.Client, epochs: int) -> dict[str, Any]:
    body = {"preset": "convnet", "dataset": {"name": "mnist"}, "training": {"epochs": epochs}}
    seconds, job_id = service_seconds(client, body, with_id=True)
    job = client.get(f"/v1/jobs/{job_id}").raise_for_status().json()
    records = client.get(f"/v1/jobs/{job_id}/metrics").raise_for_status().json()["records"]
    later = [r["epoch_seconds"] for r in records[1:]] or [records[0]["epoch_seconds"]]
    return {
        "job_id": job_id,
        "seconds": round(seconds, 1),
        "epoch_seconds_after_first": round(sum(later) / len(later), 2),
        "best_val_accuracy": round(max(r["val_accuracy"] for r in records), 4),
        "test_accuracy": round(job["result"]["test_accuracy"], 4),
    }


def plain_run(arrays: Any, epochs: int, folder: Path) -> dict[str, Any]:
    """Keras's example, written plainly: the same layers on pixels scaled to [0, 1]."""
    import keras

    from worker.data import split_dataset

    spec = PRESETS["convnet"].spec()
    keras.utils.set_random_seed(spec.training.seed)
    split = split_dataset(arrays, spec.dataset.validation_split, None, spec.training.seed)
    scaled = [
        part.astype("float32")[..., None] / 255.0 for part in (split.x_train, split.x_val, split.x_test)
    ]
    model = keras.Sequential(
        [
            keras.Input((28, 28, 1)),
            keras.layers.Conv2D(32, 3, activation="relu"),
            keras.layers.MaxPooling2D(2),
            keras.layers.Conv2D(64, 3, activation="relu"),
            keras.layers.MaxPooling2D(2),
            keras.layers.Flatten(),
            keras.layers.Dropout(0.5),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    epoch_times: list[float] = []

    class Timer(keras.callbacks.Callback):  # type: ignore[misc]
        def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
            self.began = time.perf_counter()

        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            epoch_times.append(time.perf_counter() - self.began)

    started = time.perf_counter()
    history = model.fit(
        scaled[0],
        split.y_train,
        batch_size=spec.training.batch_size,
        epochs=epochs,
        validation_data=(scaled[1], split.y_val),
        callbacks=[Timer()],
        verbose=0,
    )
    _, test_accuracy = model.evaluate(scaled[2], split.y_test, batch_size=1024, verbose=0)
    seconds = time.perf_counter() - started
    model.save(folder / "convnet.keras")
    later = epoch_times[1:] or epoch_times
    return {
        "seconds": round(seconds, 1),
        "epoch_seconds_after_first": round(sum(later) / len(later), 2),
        "best_val_accuracy": round(max(history.history["val_accuracy"]), 4),
        "test_accuracy": round(float(test_accuracy), 4),
        "parameters": model.count_params(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=15)
    args = parser.parse_args()
    from worker.data import read_idx_dataset

    arrays = read_idx_dataset(datasets_dir(), "mnist")
    with stack(worker=True) as bench, bench.client(timeout=60) as client:
        service = service_run(client, args.epochs)
        print(f"service: {service}", flush=True)
    with tempfile.TemporaryDirectory() as folder:
        plain = plain_run(arrays, args.epochs, Path(folder))
    print(f"plain keras: {plain}", flush=True)
    ratio = service["seconds"] / plain["seconds"]
    print_table(
        f"The convnet preset on the full MNIST, {args.epochs} epochs",
        ["", "test accuracy", "best val accuracy", "epoch s (after the first)", "total s"],
        [
            [
                "service",
                service["test_accuracy"],
                service["best_val_accuracy"],
                service["epoch_seconds_after_first"],
                service["seconds"],
            ],
            [
                "plain Keras",
                plain["test_accuracy"],
                plain["best_val_accuracy"],
                plain["epoch_seconds_after_first"],
                plain["seconds"],
            ],
        ],
    )
    met = "met" if service["test_accuracy"] >= TARGET_ACCURACY else "missed"
    print(f"service / plain time {ratio:.3f}; test accuracy target {TARGET_ACCURACY}: {met}")
    write_results(
        "convnet",
        {"epochs": args.epochs, "service": service, "plain": plain, "time_ratio": round(ratio, 3)},
    )


if __name__ == "__main__":
    main()
