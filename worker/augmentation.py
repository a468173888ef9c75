"""Random rotation, translation, zoom and horizontal flip of images as one affine transform.

Each training batch is resampled once: every image draws its own rotation, shift, zoom and
flip, these are composed into one matrix about the image's centre, and a single bilinear
transform applies it. Three separate Keras layers (RandomRotation, RandomTranslation,
RandomZoom) would resample the batch three times, each pass costing about as much as this one.

Backend-agnostic Keras 3 only (``keras.ops``, ``keras.random``). The layer is registered for
Keras's serialization, so the worker's checkpoints save and load it; the model a user
downloads is saved without it (``without_augmentation``), since augmentation does nothing at
inference and a plain Keras process could not load a layer it does not know.
"""

import math
from typing import Any, NamedTuple

import keras
from keras import ops

RANDOM_STATE = "random_state"


class AffineDraw(NamedTuple):
    """One batch's random draws, one value per image (1-D tensors of the batch's length).

    ``angle`` is in radians; ``shift_x`` and ``shift_y`` in pixels; ``scale`` multiplies the
    distance from the centre at which each output pixel samples its input (above 1 zooms out,
    below 1 zooms in); ``flip`` is -1 for a mirrored image, else 1.
    """

    angle: Any
    shift_x: Any
    shift_y: Any
    scale: Any
    flip: Any


def affine_rows(draw: AffineDraw, height: Any, width: Any) -> Any:
    """The transform rows ``[a0, a1, a2, b0, b1, b2, 0, 0]`` (one per image) that
    ``keras.ops.image.affine_transform`` takes: each maps an output pixel (x = column, y = row)
    to the input point it samples.

    The image's content is mirrored, rotated by ``angle`` and scaled about the centre, then
    shifted; so an output point p samples the input at c + F * scale * R(-angle) * (p - c - t),
    with c the centre, t the shift and F the mirror.
    """
    centre_x = (ops.cast(width, "float32") - 1.0) / 2.0
    centre_y = (ops.cast(height, "float32") - 1.0) / 2.0
    cos, sin = ops.cos(draw.angle), ops.sin(draw.angle)
    a0, a1 = draw.flip * draw.scale * cos, draw.flip * draw.scale * sin
    b0, b1 = -draw.scale * sin, draw.scale * cos
    # The offset that makes the centre, shifted by t, sample the input's centre.
    origin_x, origin_y = centre_x + draw.shift_x, centre_y + draw.shift_y
    a2 = centre_x - a0 * origin_x - a1 * origin_y
    b2 = centre_y - b0 * origin_x - b1 * origin_y
    zeros = ops.zeros_like(a0)
    return ops.stack([a0, a1, a2, b0, b1, b2, zeros, zeros], axis=1)


@keras.saving.register_keras_serializable(package="keras_jobs")
class RandomAffine(keras.layers.Layer):  # type: ignore[misc]
    """Randomly rotates, shifts, zooms and mirrors each image of a channels-last batch in one
    bilinear pass (points outside the image are 0), in training only; the identity otherwise.

    ``rotation`` is a fraction of a full turn (the angle is drawn in
    [-rotation * 2 pi, rotation * 2 pi], as RandomRotation's factor), ``translation`` a fraction
    of the height and of the width (each shift drawn on its own), ``zoom`` a fraction: the image
    is zoomed by a factor drawn in [1 - zoom, 1 + zoom].
    """

    def __init__(
        self,
        rotation: float = 0.0,
        translation: float = 0.0,
        zoom: float = 0.0,
        horizontal_flip: bool = False,
        seed: int | None = None,
        brightness: float = 0.0,
        contrast: float = 0.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.rotation, self.translation, self.zoom = float(rotation), float(translation), float(zoom)
        self.horizontal_flip, self.seed = bool(horizontal_flip), seed
        self.brightness, self.contrast = float(brightness), float(contrast)
        self.generator = keras.random.SeedGenerator(seed)
        # TensorFlow's image transform has no XLA kernel: a model holding this layer must not be
        # compiled with XLA ("auto" then leaves it off, as for Keras's own random image layers).
        self.supports_jit = False

    def draw(self, batch_size: Any, height: Any, width: Any) -> AffineDraw:
        """Random transform parameters for ``batch_size`` images of ``height`` x ``width``."""

        def symmetric(bound: float) -> Any:
            return keras.random.uniform((batch_size,), -bound, bound, seed=self.generator)

        angle = symmetric(self.rotation * 2.0 * math.pi)
        shift_x = symmetric(self.translation) * ops.cast(width, "float32")
        shift_y = symmetric(self.translation) * ops.cast(height, "float32")
        scale = 1.0 + symmetric(self.zoom)
        if self.horizontal_flip:
            heads = keras.random.uniform((batch_size,), 0.0, 1.0, seed=self.generator) < 0.5
            flip = ops.where(heads, -1.0, 1.0)
        else:
            flip = ops.ones((batch_size,))
        return AffineDraw(angle, shift_x, shift_y, scale, flip)

    def call(self, images: Any, training: bool | None = None) -> Any:
        if not training:
            return images
        shape = ops.shape(images)
        height, width = shape[1], shape[2]
        rows = affine_rows(self.draw(shape[0], height, width), height, width)
        moved = ops.image.affine_transform(
            images,
            rows,
            interpolation="bilinear",
            fill_mode="constant",
            fill_value=0,
            data_format="channels_last",
        )
        if not (self.brightness or self.contrast):
            return moved
        return self.recolour(moved, shape[0])

    def recolour(self, images: Any, batch_size: Any) -> Any:
        """Each image's contrast scaled about its mean by a factor in [1 - contrast, 1 + contrast],
        then a brightness in [-brightness, brightness] added; pixels (scaled to [0, 1]) stay in
        range. Drawn only when asked, so that the other draws' stream is as without them."""
        per_image = (batch_size, 1, 1, 1)
        if self.contrast:
            factor = 1.0 + keras.random.uniform(per_image, -self.contrast, self.contrast, seed=self.generator)
            mean = ops.mean(images, axis=(1, 2, 3), keepdims=True)
            images = (images - mean) * factor + mean
        if self.brightness:
            images = images + keras.random.uniform(
                per_image, -self.brightness, self.brightness, seed=self.generator
            )
        return ops.clip(images, 0.0, 1.0)

    def compute_output_shape(self, input_shape: Any) -> Any:
        return input_shape

    # The layer has no weights; Keras would save nothing of it, not even where its random stream
    # stands: saved here, so that a job resumed from a checkpoint draws on from where it left
    # off instead of repeating the draws of its first epochs.
    def save_own_variables(self, store: Any) -> None:
        store[RANDOM_STATE] = ops.convert_to_numpy(self.generator.state)

    def load_own_variables(self, store: Any) -> None:
        # Not ``in store``: not every Keras weights store defines membership, all have keys().
        if RANDOM_STATE in store.keys():  # noqa: SIM118
            self.generator.state.assign(store[RANDOM_STATE])

    def get_config(self) -> dict[str, Any]:
        config: dict[str, Any] = super().get_config()
        config.update(
            rotation=self.rotation,
            translation=self.translation,
            zoom=self.zoom,
            horizontal_flip=self.horizontal_flip,
            seed=self.seed,
            brightness=self.brightness,
            contrast=self.contrast,
        )
        return config


def has_augmentation(model: keras.Model) -> bool:
    """Whether the model holds a layer that acts in training only, to alter its inputs."""
    return any(isinstance(layer, RandomAffine) for layer in model.layers)


def without_augmentation(model: keras.Model) -> keras.Model:
    """The same network for inference: the model's chain of layers, sharing their weights,
    without its augmentation layer; the model itself when it has none.

    It loads with plain ``keras.models.load_model`` in a process that never imported this
    code. ``build_model`` makes a chain (each layer feeds the next), which ``model.layers``
    lists in order.
    """
    if not has_augmentation(model):
        return model
    (source,) = model.inputs
    inputs = keras.Input(shape=source.shape[1:], dtype=source.dtype, name=model.layers[0].name)
    x = inputs
    for layer in model.layers[1:]:
        if not isinstance(layer, RandomAffine):
            x = layer(x)
    return keras.Model(inputs, x, name=model.name)
