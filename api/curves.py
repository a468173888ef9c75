"""Learning curves of a study's variants, drawn with matplotlib (no display needed)."""

import io
from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")  # before pyplot: render to memory, never to a screen

import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from shared.models.jobs import EpochRecord
from shared.models.studies import Objective


def curves_png(title: str, series: Sequence[tuple[str, Sequence[EpochRecord]]]) -> bytes:
    """Validation accuracy and loss per epoch, one labelled line per variant, as a PNG."""
    figure, (accuracy, loss) = plt.subplots(1, 2, figsize=(12, 4.5), constrained_layout=True)
    try:
        for name, records in series:
            epochs = [r.epoch for r in records]
            accuracy.plot(epochs, [r.val_accuracy for r in records], marker="o", markersize=3, label=name)
            loss.plot(epochs, [r.val_loss for r in records], marker="o", markersize=3, label=name)
        for axes, label in ((accuracy, "validation accuracy"), (loss, "validation loss")):
            axes.set_xlabel("epoch")
            axes.set_ylabel(label)
            axes.grid(alpha=0.3)
        accuracy.legend(fontsize="small")
        return _png(figure, title)
    finally:
        plt.close(figure)


def best_so_far(
    series: Sequence[Sequence[EpochRecord]], objective: Objective
) -> tuple[list[int], list[float]]:
    """Epochs spent (every trial's, in the order they were recorded) and the best objective
    value reached by then, one point per recorded epoch that has the value."""
    records = sorted((r for records in series for r in records), key=lambda r: r.at)
    spent, best, xs, ys = 0, None, [], []
    better = max if objective.mode == "max" else min
    for record in records:
        spent += 1
        value = getattr(record, objective.metric)
        if value is None:
            continue
        best = value if best is None else better(best, value)
        xs.append(spent)
        ys.append(float(best))
    return xs, ys


def progress_png(title: str, series: Sequence[Sequence[EpochRecord]], objective: Objective) -> bytes:
    """The best value against the epochs spent, as a PNG."""
    figure, axes = plt.subplots(figsize=(8, 4.5), constrained_layout=True)
    try:
        xs, ys = best_so_far(series, objective)
        axes.step(xs, ys, where="post", marker="o", markersize=3)
        axes.set_xlabel("epochs spent, all trials")
        axes.set_ylabel(f"best {objective.metric} ({objective.mode})")
        axes.grid(alpha=0.3)
        return _png(figure, title)
    finally:
        plt.close(figure)


def _png(figure: Figure, title: str) -> bytes:
    figure.suptitle(title)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    return buffer.getvalue()
