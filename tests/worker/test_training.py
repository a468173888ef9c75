"""The Keras model a spec builds: its size, its regularization, and ZCA across save and load."""

from pathlib import Path
from typing import Any

import keras
import numpy as np
import pytest

from shared.models.spec import JobSpec
from worker.checkpoints import save_model
from worker.data import fit_zca
from worker.model import build_model
from worker.training import monitored


def spec_of(**fields: Any) -> JobSpec:
    return JobSpec.model_validate(fields)


def trainable_count(model: keras.Model) -> int:
    return sum(int(np.prod(weight.shape)) for weight in model.trainable_weights)


@pytest.mark.parametrize(
    "layers",
    [[500] * 5, [32], [64, {"units": 16, "l2": 0.01, "dropout": 0.5}]],
    ids=["article", "one", "mixed"],
)
def test_model_size_matches_the_specs_count(layers: list[Any]) -> None:
    spec = spec_of(model={"hidden_layers": layers}, regularization={"dropout": 0.2, "input_dropout": 0.1})
    assert trainable_count(build_model(spec)) == spec.model.parameter_count()


def test_regularizers_follow_global_and_per_layer_settings() -> None:
    spec = spec_of(
        model={"hidden_layers": [8, {"units": 8, "l1": 0.5}, {"units": 8, "l2": 0.0}]},
        regularization={"l2": 0.01},
    )
    model = build_model(spec)
    kinds = [type(model.get_layer(f"hidden_{i}").kernel_regularizer).__name__ for i in (1, 2, 3)]
    assert kinds == ["L2", "L1L2", "NoneType"]
    assert float(sum(keras.ops.convert_to_numpy(loss) for loss in model.losses)) > 0


def test_dropout_layers_only_where_asked() -> None:
    spec = spec_of(
        model={"hidden_layers": [8, {"units": 8, "dropout": 0.0}]}, regularization={"dropout": 0.3}
    )
    names = [layer.name for layer in build_model(spec).layers if isinstance(layer, keras.layers.Dropout)]
    assert names == ["dropout_1"]


def test_augmentation_is_inactive_at_inference() -> None:
    augmentation = {"rotation": 0.1, "translation": 0.1, "zoom": 0.1, "horizontal_flip": True}
    model = build_model(spec_of(model={"hidden_layers": [8]}, regularization={"augmentation": augmentation}))
    x = np.random.default_rng(0).integers(0, 255, size=(4, 28, 28)).astype("float32")
    assert np.allclose(model.predict(x, verbose=0), model.predict(x, verbose=0))
    trained = keras.ops.convert_to_numpy(model(x, training=True))
    assert not np.allclose(trained, model.predict(x, verbose=0))


def test_zca_layer_survives_save_and_load(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 255, size=(400, 28, 28)).astype(np.uint8)
    spec = spec_of(model={"hidden_layers": [16]}, regularization={"augmentation": {"zca_whitening": True}})
    model = build_model(spec, fit_zca(images, 1e-2))
    save_model(model, tmp_path / "job" / "model.keras")
    loaded = keras.models.load_model(tmp_path / "job" / "model.keras")
    assert loaded.get_layer("zca_whitening").trainable is False
    x = images[:8].astype("float32")
    assert np.allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6)
    whitening = keras.Model(loaded.input, loaded.get_layer("zca_whitening").output)
    mean, matrix = fit_zca(images, 1e-2)
    expected = (x.reshape(8, -1) / 255.0 - mean) @ matrix
    assert np.allclose(whitening.predict(x, verbose=0), expected, atol=1e-3)
    assert not list((tmp_path / "job").glob("*partial*"))


def test_best_epoch_monitor_defaults_to_validation_accuracy() -> None:
    assert monitored(spec_of()) == ("val_accuracy", "max")
    assert monitored(spec_of(dataset={"validation_split": 0})) == ("accuracy", "max")
    stopping = {"early_stopping": {"monitor": "val_loss"}}
    assert monitored(spec_of(regularization=stopping)) == ("val_loss", "min")
