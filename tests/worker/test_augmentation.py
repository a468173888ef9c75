"""The augmentation layer: where its transform puts a pixel, its random draws, and the models
saved with it (checkpoints) and without it (what users download)."""

import math
from pathlib import Path

import keras
import numpy as np
import pytest
from keras import ops

from shared.models.network import DataShape
from shared.models.spec import JobSpec
from shared.storage.layout import CHECKPOINT_INFERENCE_MODEL_FILE, checkpoint_key, model_key
from shared.storage.local import LocalStore
from tests.helpers import mnist_model
from tests.plain_keras import predict_with_plain_keras
from worker.augmentation import AffineDraw, RandomAffine, affine_rows, has_augmentation, without_augmentation
from worker.cache import ArtifactCache
from worker.checkpoints import Checkpoint, Checkpointer, load_checkpoint, save_model
from worker.data import fit_zca
from worker.model import build_model, compile_model

# Odd sides put the centre on a pixel (row 12, column 13), so every expected spot is a whole pixel.
HEIGHT, WIDTH = 25, 27
AUGMENTATION = {"rotation": 0.05, "translation": 0.1, "zoom": 0.1, "horizontal_flip": True}


def bright_pixel(row: int, column: int) -> np.ndarray:
    image = np.zeros((1, HEIGHT, WIDTH, 1), np.float32)
    image[0, row, column, 0] = 1.0
    return image


def transformed(image: np.ndarray, **draw: float) -> np.ndarray:
    values = {"angle": 0.0, "shift_x": 0.0, "shift_y": 0.0, "scale": 1.0, "flip": 1.0, **draw}
    rows = affine_rows(
        AffineDraw(**{name: ops.convert_to_tensor([value], "float32") for name, value in values.items()}),
        HEIGHT,
        WIDTH,
    )
    output = ops.image.affine_transform(image, rows, interpolation="bilinear", fill_mode="constant")
    return np.asarray(ops.convert_to_numpy(output))[0, :, :, 0]


def brightest(image: np.ndarray) -> tuple[int, int]:
    row, column = np.unravel_index(int(image.argmax()), image.shape)
    return int(row), int(column)


# The pixel 3 columns right of and 1 row above the centre (12, 13); rows grow downwards.
@pytest.mark.parametrize(
    ("draw", "lands_at"),
    [
        ({}, (11, 16)),
        ({"angle": math.pi / 2}, (15, 14)),  # (+3, -1) turned a quarter: (+1, +3)
        ({"angle": math.pi}, (13, 10)),
        ({"shift_x": 2.0, "shift_y": -4.0}, (7, 18)),
        ({"scale": 0.5}, (10, 19)),  # sampling at half the distance: the image twice as large
        ({"flip": -1.0}, (11, 10)),
        ({"angle": math.pi / 2, "scale": 0.5, "shift_x": -1.0, "shift_y": 1.0}, (19, 14)),
    ],
    ids=["identity", "quarter-turn", "half-turn", "shift", "zoom-in", "flip", "composed"],
)
def test_one_transform_moves_a_pixel_where_its_draw_says(
    draw: dict[str, float], lands_at: tuple[int, int]
) -> None:
    output = transformed(bright_pixel(11, 16), **draw)
    assert brightest(output) == lands_at
    assert output.max() == pytest.approx(1.0, abs=1e-4)


def test_zooming_out_shrinks_and_points_outside_the_image_are_zero() -> None:
    image = np.ones((1, HEIGHT, WIDTH, 1), np.float32)
    output = transformed(image, scale=2.0)
    assert output[12, 13] == pytest.approx(1.0)
    assert output[0, 0] == 0.0
    assert output[-1, -1] == 0.0


def test_draws_stay_within_the_configured_ranges_and_spread_over_them() -> None:
    layer = RandomAffine(rotation=0.05, translation=0.1, zoom=0.2, horizontal_flip=True, seed=7)
    draw = AffineDraw(*(np.asarray(ops.convert_to_numpy(part)) for part in layer.draw(4000, 28, 20)))
    bounds = {
        "angle": 0.05 * 2 * math.pi,
        "shift_x": 0.1 * 20,
        "shift_y": 0.1 * 28,
        "scale": 0.2,
    }
    for name, bound in bounds.items():
        values = getattr(draw, name) - (1.0 if name == "scale" else 0.0)
        assert -bound - 1e-6 <= values.min() < -0.9 * bound, name
        assert 0.9 * bound < values.max() <= bound + 1e-6, name
    assert set(np.unique(draw.flip)) == {-1.0, 1.0}
    assert 0.45 < float(np.mean(draw.flip == -1.0)) < 0.55


def test_without_a_flip_no_image_is_mirrored() -> None:
    layer = RandomAffine(rotation=0.1, seed=7)
    draw = layer.draw(500, 28, 28)
    assert np.all(ops.convert_to_numpy(draw.flip) == 1.0)
    assert np.all(ops.convert_to_numpy(draw.scale) == 1.0)


def test_training_transforms_each_image_and_inference_is_the_identity() -> None:
    images = np.random.default_rng(0).random((6, 28, 28, 1)).astype(np.float32)
    layer = RandomAffine(**AUGMENTATION, seed=3)
    trained = np.asarray(ops.convert_to_numpy(layer(images, training=True)))
    assert trained.shape == images.shape == tuple(layer.compute_output_shape(images.shape))
    assert not np.allclose(trained, images)
    assert np.array_equal(ops.convert_to_numpy(layer(images, training=False)), images)
    assert np.array_equal(ops.convert_to_numpy(layer(images)), images)


def test_the_same_seed_draws_the_same_transforms_and_another_does_not() -> None:
    images = np.random.default_rng(0).random((4, 28, 28, 1)).astype(np.float32)

    def two_batches(seed: int) -> list[np.ndarray]:
        layer = RandomAffine(**AUGMENTATION, seed=seed)
        return [np.asarray(ops.convert_to_numpy(layer(images, training=True))) for _ in range(2)]

    first, second = two_batches(11), two_batches(11)
    assert all(np.array_equal(a, b) for a, b in zip(first, second, strict=True))
    assert not np.allclose(first[0], first[1]), "each batch draws anew"
    assert not np.allclose(first[0], two_batches(12)[0])


def augmented_model() -> keras.Model:
    spec = JobSpec.model_validate(
        {"model": {"hidden_layers": [16]}, "regularization": {"augmentation": AUGMENTATION, "dropout": 0.2}}
    )
    model = mnist_model(spec)
    compile_model(model, spec, "classification")
    rng = np.random.default_rng(0)
    model.fit(rng.integers(0, 256, (64, 28, 28)), rng.integers(0, 10, 64), epochs=1, verbose=0)
    return model


def test_the_model_has_one_augmentation_layer_only_when_the_spec_asks() -> None:
    model = augmented_model()
    assert [type(layer).__name__ for layer in model.layers].count("RandomAffine") == 1
    assert not has_augmentation(mnist_model(JobSpec.model_validate({"model": {"hidden_layers": [8]}})))


def test_a_checkpoint_keeps_the_layer_and_resumes_its_random_stream(tmp_path: Path) -> None:
    model = augmented_model()
    artifacts = LocalStore(tmp_path)
    Checkpointer(artifacts, "job", 1).save(1, Checkpoint(model, {"elapsed_seconds": 1.0}, None))
    loaded = load_checkpoint(ArtifactCache(artifacts, tmp_path / "cache", 1 << 30), "job", 1, 1).model
    layer = loaded.get_layer("augmentation")
    assert isinstance(layer, RandomAffine)
    assert layer.get_config() == model.get_layer("augmentation").get_config()
    images = np.random.default_rng(1).random((4, 28, 28, 1)).astype(np.float32)
    both = [
        np.asarray(ops.convert_to_numpy(m.get_layer("augmentation")(images, training=True)))
        for m in (model, loaded)
    ]
    assert np.array_equal(*both), "the loaded layer draws what the saved one would have drawn next"
    x = np.random.default_rng(2).integers(0, 256, (8, 28, 28)).astype(np.float32)
    assert np.allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6)
    assert (tmp_path / "job" / "checkpoints" / "attempt-1-epoch-0001" / "inference.keras").is_file()


def test_the_model_without_augmentation_shares_the_weights_and_predicts_the_same() -> None:
    model = augmented_model()
    stripped = without_augmentation(model)
    assert not has_augmentation(stripped)
    assert [layer.name for layer in stripped.layers] == [
        layer.name for layer in model.layers if not isinstance(layer, RandomAffine)
    ]
    assert stripped.get_layer("hidden_1") is model.get_layer("hidden_1")
    x = np.random.default_rng(2).integers(0, 256, (8, 28, 28)).astype(np.float32)
    assert np.allclose(stripped.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6)
    plain = mnist_model(JobSpec.model_validate({"model": {"hidden_layers": [8]}}))
    assert without_augmentation(plain) is plain


def test_a_saved_job_model_loads_in_a_process_that_knows_only_keras(tmp_path: Path) -> None:
    model = augmented_model()
    save_model(model, LocalStore(tmp_path), "model.keras")
    x = np.random.default_rng(3).integers(0, 256, (5, 28, 28)).astype(np.float32)
    predictions, layers = predict_with_plain_keras(tmp_path / "model.keras", x)
    assert "RandomAffine" not in layers
    assert "Dense" in layers
    assert np.allclose(predictions, model.predict(x, verbose=0), atol=1e-5)


def test_a_checkpoint_s_model_for_users_loads_in_a_process_that_knows_only_keras(tmp_path: Path) -> None:
    model = augmented_model()
    artifacts = LocalStore(tmp_path)
    Checkpointer(artifacts, "job", 1).save(1, Checkpoint(model, {}, None))
    # What a job that ended without its worker is given as its model (shared.jobs.endings).
    assert artifacts.copy(checkpoint_key("job", 1, 1, CHECKPOINT_INFERENCE_MODEL_FILE), model_key("job", 2))
    x = np.random.default_rng(4).integers(0, 256, (5, 28, 28)).astype(np.float32)
    predictions, layers = predict_with_plain_keras(artifacts.path(model_key("job", 2)), x)
    assert "RandomAffine" not in layers
    assert np.allclose(predictions, model.predict(x, verbose=0), atol=1e-5)


def test_colour_images_are_recoloured_in_training_only() -> None:
    layer = RandomAffine(rotation=0.05, horizontal_flip=True, seed=3, brightness=0.2, contrast=0.3)
    images = np.random.default_rng(0).random((6, 20, 24, 3)).astype(np.float32)
    trained = np.asarray(ops.convert_to_numpy(layer(images, training=True)))
    assert trained.shape == images.shape
    assert trained.min() >= 0.0
    assert trained.max() <= 1.0
    assert not np.allclose(trained, images)
    assert np.array_equal(np.asarray(ops.convert_to_numpy(layer(images, training=False))), images)
    again = RandomAffine.from_config(layer.get_config())
    assert (again.brightness, again.contrast) == (0.2, 0.3)


def test_zca_whitens_32x32_colour_images() -> None:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 255, size=(64, 32, 32, 3)).astype(np.uint8)
    mean, matrix = fit_zca(images, 0.1)
    assert matrix.shape == (3072, 3072)
    spec = JobSpec.model_validate(
        {
            "model": {"layers": [{"type": "conv2d", "filters": 4}, {"type": "flatten"}]},
            "regularization": {"augmentation": {"zca_whitening": True, "zca_epsilon": 0.1, "contrast": 0.1}},
        }
    )
    plan = spec.model.plan(DataShape((32, 32, 3), 5, "classification"))
    model = build_model(spec, plan, (32, 32, 3), (mean, matrix))
    assert model.predict(images[:2], verbose=0).shape == (2, 5)
    whitened = keras.Model(model.input, model.get_layer("zca_whitening").output).predict(
        images[:4], verbose=0
    )
    expected = (images[:4].reshape(4, -1) / 255.0 - mean) @ matrix
    assert np.allclose(whitened, expected, atol=1e-3)
