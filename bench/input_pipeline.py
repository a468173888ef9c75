"""Input pipeline: the article's network trained on MNIST with random rotation, translation and
zoom against without, built and fitted by the worker's own code (``worker.training``), so the
figure is what a job's epoch costs; then, per batch, the worker's augmentation layer against
the three Keras layers it replaced. Epoch times exclude the first epoch of each run (graph
tracing); runs alternate, with and without, to spread the machine's noise over both.

    .venv/bin/python -m bench.input_pipeline [--train-limit 20000] [--epochs 3] [--runs 2]
"""

import argparse
import statistics
import time
from typing import Any

from bench.harness import datasets_dir, print_table, write_results
from shared.models.datasets import BUILTIN_SHAPES
from shared.models.spec import JobSpec
from shared.settings import Settings

AUGMENTATION = {"rotation": 0.05, "translation": 0.1, "zoom": 0.1}


def epoch_seconds(spec: JobSpec, settings: Settings) -> tuple[list[float], list[float]]:
    """Wall time and CPU time (this process's threads, all cores) of each epoch of one fit, as
    the worker would run it. Other work on the machine stretches the wall time far more than
    the CPU time, which is the steadier of the two on a shared machine."""
    import keras

    from worker.training import fresh_model, prepare_data

    class EpochClock(keras.callbacks.Callback):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            self.seconds: list[float] = []
            self.cpu_seconds: list[float] = []

        def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
            self._started, self._cpu_started = time.perf_counter(), time.process_time()

        def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
            self.seconds.append(time.perf_counter() - self._started)
            self.cpu_seconds.append(time.process_time() - self._cpu_started)

    data = BUILTIN_SHAPES[spec.dataset.name].data_shape(spec.model.task)
    split = prepare_data(spec, settings, data)
    model = fresh_model(spec, split, data)
    clock = EpochClock()
    model.fit(
        split.x_train,
        split.y_train,
        batch_size=spec.training.batch_size,
        epochs=spec.training.epochs,
        validation_data=(split.x_val, split.y_val),
        callbacks=[clock],
        verbose=0,
    )
    return clock.seconds, clock.cpu_seconds


def per_batch_costs(spec: JobSpec, batch_size: int, repeats: int = 100) -> dict[str, float]:
    """Milliseconds per batch, compiled as in training: the worker's augmentation layer (one
    combined transform), the three Keras layers it replaced (each its own transform), one bare
    bilinear image transform (the op each of them runs), and a training step of the network
    without augmentation. Says where an augmented epoch's time goes."""
    import keras
    import numpy as np
    import tensorflow as tf

    from worker.model import augmentation_layer, builtin_model, compile_model

    aug, seed = spec.regularization.augmentation, spec.training.seed
    rng = np.random.default_rng(0)
    images = tf.constant(rng.random((batch_size, 28, 28, 1), dtype=np.float32))
    combined = augmentation_layer(spec)
    assert combined is not None, "the spec asks for augmentation"
    replaced = [
        keras.layers.RandomRotation(aug.rotation, fill_mode="constant", seed=seed),
        keras.layers.RandomTranslation(aug.translation, aug.translation, fill_mode="constant", seed=seed),
        keras.layers.RandomZoom(aug.zoom, aug.zoom, fill_mode="constant", seed=seed),
    ]
    transform = tf.constant(np.tile(np.array([1, 0.1, 0.5, 0.05, 1, 0.3, 0, 0], np.float32), (batch_size, 1)))

    def apply_all() -> Any:
        x = images
        for layer in replaced:
            x = layer(x, training=True)
        return x

    cases: dict[str, Any] = {"RandomAffine (the worker's layer)": lambda: combined(images, training=True)}
    cases.update(
        {type(layer).__name__: (lambda layer=layer: layer(images, training=True)) for layer in replaced}
    )
    cases["the three Keras layers chained"] = apply_all
    cases["one bilinear transform op"] = lambda: tf.raw_ops.ImageProjectiveTransformV3(
        images=images,
        transforms=transform,
        output_shape=[28, 28],
        fill_value=0.0,
        interpolation="BILINEAR",
        fill_mode="CONSTANT",
    )
    costs = {name: _ms_per_call(tf.function(case), repeats) for name, case in cases.items()}
    plain = JobSpec.model_validate({})
    model = builtin_model(plain)
    compile_model(model, plain, "classification")
    x = rng.integers(0, 256, (batch_size, 28, 28)).astype(np.uint8)
    y = rng.integers(0, 10, batch_size).astype(np.uint8)
    costs["training step without augmentation"] = _ms_per_call(lambda: model.train_on_batch(x, y), repeats)
    return costs


def _ms_per_call(call: Any, repeats: int) -> float:
    call()  # traces
    started = time.perf_counter()
    for _ in range(repeats):
        call()
    return round((time.perf_counter() - started) / repeats * 1000, 3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--train-limit", type=int, default=20_000)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--runs", type=int, default=2, help="runs of each variant, alternated")
    args = parser.parse_args()
    settings = Settings(datasets_dir=datasets_dir(), redis_url="redis://unused.invalid/0")
    base = {"dataset": {"train_limit": args.train_limit}, "training": {"epochs": args.epochs}}
    specs = {
        "without augmentation": JobSpec.model_validate(base),
        "with augmentation": JobSpec.model_validate(
            {**base, "regularization": {"augmentation": AUGMENTATION}}
        ),
    }
    times: dict[str, list[float]] = {name: [] for name in specs}
    cpu_times: dict[str, list[float]] = {name: [] for name in specs}
    for run in range(args.runs):
        for name, spec in specs.items():
            seconds, cpu_seconds = epoch_seconds(spec, settings)
            times[name].extend(seconds[1:])
            cpu_times[name].extend(cpu_seconds[1:])
            print(f"run {run + 1} {name}: epochs {[round(s, 2) for s in seconds]} s", flush=True)
    medians = {name: statistics.median(seconds) for name, seconds in times.items()}
    cpu_medians = {name: statistics.median(seconds) for name, seconds in cpu_times.items()}
    cost = medians["with augmentation"] / medians["without augmentation"] - 1
    cpu_cost = cpu_medians["with augmentation"] / cpu_medians["without augmentation"] - 1
    print_table(
        f"Epoch time of 784-500x5-10 on {args.train_limit} MNIST images (70% trained), median of epochs 2+",
        ["variant", "epochs timed", "median s", "min s", "max s", "median CPU s"],
        [[name, len(s), medians[name], min(s), max(s), cpu_medians[name]] for name, s in times.items()],
    )
    print(f"augmentation costs {cost:+.1%} per epoch (target: at most +15%), {cpu_cost:+.1%} in CPU time")
    costs = per_batch_costs(specs["with augmentation"], specs["with augmentation"].training.batch_size)
    print_table("Where it goes: milliseconds per batch of 128, compiled", ["step", "ms"], list(costs.items()))
    write_results(
        "input_pipeline",
        {
            "train_limit": args.train_limit,
            "epochs_per_run": args.epochs,
            "runs": args.runs,
            "augmentation": AUGMENTATION,
            "epoch_seconds": times,
            "median_epoch_seconds": medians,
            "augmentation_cost": round(cost, 4),
            "epoch_cpu_seconds": cpu_times,
            "median_epoch_cpu_seconds": cpu_medians,
            "augmentation_cpu_cost": round(cpu_cost, 4),
            "per_batch_ms": costs,
        },
    )


if __name__ == "__main__":
    main()
