"""The article's comparison, measured: six regularization variants on the full MNIST, trained
through a running keras-jobs service and, beside it, as a plain Keras 3 script on the same data
split and seed. Prints one table (validation and test accuracy and wall time from both, and the
time ratio) and saves the study's learning curves.

    KJOBS_URL=http://127.0.0.1:8000 KJOBS_API_KEY=$(cat .kjobs/api-key) DATASETS_DIR=... \\
        python bench/case_study.py --curves docs/case-study-curves.png

The service must have a worker; run nothing else meanwhile, since both sides share the CPU.
"""

import argparse
import os
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from shared.models.presets import ARTICLE_PRESETS, PRESETS
from shared.models.spec import JobSpec
from worker.data import fit_zca, read_idx_dataset, split_dataset

EPOCHS = 10


def run_service(client: httpx.Client, epochs: int) -> tuple[dict[str, Any], bytes]:
    """The article preset as one study, one variant at a time; its final state and curves."""
    base = {"dataset": {"name": "mnist"}, "training": {"epochs": epochs}}
    body = {"name": "article", "preset": "article", "base": base, "max_parallel": 1}
    study = client.post("/v1/studies", json=body).raise_for_status().json()
    while study["status"] != "completed":
        time.sleep(5)
        study = client.get(f"/v1/studies/{study['id']}").raise_for_status().json()
    curves = client.get(study["links"]["curves"]).raise_for_status().content
    return study, curves


def service_rows(client: httpx.Client, study: dict[str, Any]) -> dict[str, dict[str, float]]:
    """Per variant: best validation accuracy, test accuracy and the job's wall time."""
    rows = {}
    for entry in study["leaderboard"]:
        job = client.get(f"/v1/jobs/{entry['job_id']}").raise_for_status().json()
        started, finished = (datetime.fromisoformat(job[k]) for k in ("started_at", "finished_at"))
        rows[entry["variant"]] = {
            "val": entry["best_value"],
            "test": entry["test_accuracy"],
            "seconds": (finished - started).total_seconds(),
            "epochs": entry["stopped_epoch"],
        }
    return rows


def plain_keras(spec: JobSpec, split: Any) -> dict[str, float]:
    """The article's script for one variant, in plain Keras 3: Dense layers on scaled pixels."""
    import keras

    keras.utils.set_random_seed(spec.training.seed)
    reg = spec.regularization
    x_train = split.x_train.reshape(len(split.x_train), -1).astype("float32") / 255.0
    x_val = split.x_val.reshape(len(split.x_val), -1).astype("float32") / 255.0
    x_test = split.x_test.reshape(len(split.x_test), -1).astype("float32") / 255.0
    if reg.augmentation.zca_whitening:
        mean, matrix = fit_zca(split.x_train, reg.augmentation.zca_epsilon)
        x_train, x_val, x_test = ((x - mean) @ matrix for x in (x_train, x_val, x_test))
    kernel_regularizer = (
        keras.regularizers.L2(reg.l2) if reg.l2 else keras.regularizers.L1(reg.l1) if reg.l1 else None
    )
    layers: list[Any] = [keras.Input((784,))]
    for units in spec.model.layer_units():
        layers.append(keras.layers.Dense(units, activation="relu", kernel_regularizer=kernel_regularizer))
        if reg.dropout:
            layers.append(keras.layers.Dropout(reg.dropout))
    layers.append(keras.layers.Dense(10, activation="softmax"))
    model = keras.Sequential(layers)
    model.compile(
        optimizer=keras.optimizers.Adam(0.001), loss="sparse_categorical_crossentropy", metrics=["accuracy"]
    )
    callbacks = []
    if reg.early_stopping:
        callbacks.append(
            keras.callbacks.EarlyStopping(monitor="val_accuracy", patience=2, restore_best_weights=True)
        )
    started = time.perf_counter()
    history = model.fit(
        x_train,
        split.y_train,
        batch_size=128,
        epochs=spec.training.epochs,
        validation_data=(x_val, split.y_val),
        callbacks=callbacks,
        verbose=0,
    )
    _, test_accuracy = model.evaluate(x_test, split.y_test, batch_size=1024, verbose=0)
    return {
        "val": max(history.history["val_accuracy"]),
        "test": float(test_accuracy),
        "seconds": time.perf_counter() - started,
        "epochs": len(history.history["val_accuracy"]),
    }


def run_plain(epochs: int) -> dict[str, dict[str, float]]:
    """All six variants as plain Keras, on the service's data split."""
    arrays = read_idx_dataset(Path(os.environ["DATASETS_DIR"]), "mnist")
    assert arrays is not None, "DATASETS_DIR must hold the MNIST IDX files"
    rows = {}
    for name in ARTICLE_PRESETS:
        preset = PRESETS[name]
        spec = preset.spec().model_copy(
            update={"training": preset.spec().training.model_copy(update={"epochs": epochs})}
        )
        split = split_dataset(arrays, spec.dataset.validation_split, None, spec.training.seed)
        rows[name] = plain_keras(spec, split)
        print(f"plain keras {name}: {rows[name]}", flush=True)
    return rows


def table(service: dict[str, dict[str, float]], plain: dict[str, dict[str, float]]) -> str:
    """The comparison as a Markdown table."""
    lines = [
        "| variant | epochs | val acc (service) | val acc (plain) | test acc (service) | test acc (plain) "
        "| time s (service) | time s (plain) | time ratio |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name in ARTICLE_PRESETS:
        s, p = service[name], plain[name]
        ratio = s["seconds"] / p["seconds"]
        lines.append(
            f"| {name} | {s['epochs']} / {p['epochs']} | {s['val']:.4f} | {p['val']:.4f} | {s['test']:.4f} "
            f"| {p['test']:.4f} | {s['seconds']:.1f} | {p['seconds']:.1f} | {ratio:.2f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=EPOCHS)
    parser.add_argument("--curves", type=Path, default=Path("case-study-curves.png"))
    args = parser.parse_args()
    headers = {"Authorization": f"Bearer {os.environ['KJOBS_API_KEY']}"}
    with httpx.Client(
        base_url=os.environ.get("KJOBS_URL", "http://127.0.0.1:8000"), headers=headers, timeout=30
    ) as client:
        study, curves = run_service(client, args.epochs)
        service = service_rows(client, study)
    args.curves.write_bytes(curves)
    print(f"service study {study['id']} done", flush=True)
    plain = run_plain(args.epochs)
    print(table(service, plain))


if __name__ == "__main__":
    main()
