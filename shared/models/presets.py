"""The article's six regularization variants, ready to submit by name."""

from dataclasses import dataclass
from typing import Any

from shared.models.spec import JobSpec, PresetName

_DROPOUT: dict[str, Any] = {"regularization": {"dropout": 0.25}}
# Keras's "simple MNIST convnet" example: 34,826 parameters, about 99% test accuracy on MNIST.
_CONVNET: dict[str, Any] = {
    "dataset": {"validation_split": 0.1},
    "model": {
        "layers": [
            {"type": "conv2d", "filters": 32, "kernel_size": 3},
            {"type": "max_pool2d", "pool_size": 2},
            {"type": "conv2d", "filters": 64, "kernel_size": 3},
            {"type": "max_pool2d", "pool_size": 2},
            {"type": "flatten"},
            {"type": "dropout", "rate": 0.5},
        ]
    },
    "training": {"epochs": 15, "batch_size": 128},
}


ARTICLE_PRESETS: tuple[PresetName, ...] = (
    "baseline",
    "l2",
    "l1",
    "dropout",
    "augmentation",
    "early_stopping",
)
"""The article's six variants: the study preset ``article``."""


def deep_merge(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``overrides`` applied: nested objects merge, everything else replaces."""
    merged = dict(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


@dataclass(frozen=True)
class Preset:
    name: PresetName
    description: str
    overrides: dict[str, Any]

    def spec(self) -> JobSpec:
        """The preset as a full spec (defaults are the article's 784-500x5-10 network)."""
        return JobSpec.model_validate({"name": self.name, **self.overrides})


PRESETS: dict[PresetName, Preset] = {
    preset.name: preset
    for preset in (
        Preset("baseline", "No regularization.", {}),
        Preset("l2", "L2 of 1e-4 on every hidden kernel.", {"regularization": {"l2": 1e-4}}),
        Preset("l1", "L1 of 1e-4 on every hidden kernel.", {"regularization": {"l1": 1e-4}}),
        Preset("dropout", "Dropout of 0.25 after every hidden layer.", _DROPOUT),
        Preset(
            "augmentation",
            "ZCA whitening of the inputs, with the dropout model.",
            {"regularization": {"dropout": 0.25, "augmentation": {"zca_whitening": True}}},
        ),
        Preset(
            "early_stopping",
            "The dropout model, stopped when val_accuracy has not improved for 2 epochs.",
            {
                "regularization": {
                    "dropout": 0.25,
                    "early_stopping": {"monitor": "val_accuracy", "patience": 2},
                }
            },
        ),
        Preset(
            "convnet",
            "Two 3x3 convolutions (32 and 64 filters), each followed by 2x2 max pooling, then "
            "dropout of 0.5 and the softmax: Keras's simple MNIST convnet.",
            _CONVNET,
        ),
        Preset(
            "convnet_augmented",
            "The convnet with random rotation (up to 18 degrees), translation and zoom (up to 10%).",
            deep_merge(
                _CONVNET,
                {"regularization": {"augmentation": {"rotation": 0.05, "translation": 0.1, "zoom": 0.1}}},
            ),
        ),
    )
}
