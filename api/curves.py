"""Learning curves of a study's variants, drawn with matplotlib (no display needed)."""

import io
from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")  # before pyplot: render to memory, never to a screen

import matplotlib.pyplot as plt

from shared.models.jobs import EpochRecord


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
        figure.suptitle(title)
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", dpi=100)
        return buffer.getvalue()
    finally:
        plt.close(figure)
