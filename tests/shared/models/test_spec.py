"""The job spec: the article's defaults, bounds, cross-field checks and presets."""

from typing import get_args

import pytest

from shared.errors import SpecInvalid
from shared.jobs.submission import resolve_submission
from shared.models.datasets import BUILTIN_SHAPES
from shared.models.presets import PRESETS, deep_merge
from shared.models.spec import JobSpec, JobSubmission, PresetName
from shared.settings import Settings


def resolve(body: dict[str, object], **settings: object) -> JobSpec:
    return resolve_submission(JobSubmission.model_validate(body), Settings(**settings)).spec  # type: ignore[arg-type]


def test_defaults_are_the_articles_network() -> None:
    spec = JobSpec()
    assert spec.model.layer_units() == [500] * 5
    assert (spec.training.optimizer, spec.training.batch_size, spec.training.epochs) == ("adam", 128, 10)
    assert spec.dataset.validation_split == 0.3


def test_every_preset_name_has_a_valid_preset() -> None:
    assert set(PRESETS) == set(get_args(PresetName))
    for name, preset in PRESETS.items():
        assert preset.spec().name == name


def test_presets_carry_the_articles_settings() -> None:
    assert PRESETS["l2"].spec().regularization.l2 == 1e-4
    assert PRESETS["l1"].spec().regularization.l1 == 1e-4
    assert PRESETS["dropout"].spec().regularization.dropout == 0.25
    assert PRESETS["augmentation"].spec().regularization.augmentation.zca_whitening is True
    stopping = PRESETS["early_stopping"].spec().regularization.early_stopping
    assert stopping is not None
    assert (stopping.monitor, stopping.patience) == ("val_accuracy", 2)


def test_preset_overrides_merge_deeply() -> None:
    spec = resolve({"preset": "dropout", "dataset": {"train_limit": 5000}, "training": {"epochs": 3}})
    assert spec.regularization.dropout == 0.25
    assert (spec.dataset.train_limit, spec.dataset.name, spec.training.epochs) == (5000, "mnist", 3)
    assert spec.training.batch_size == 128


def test_the_queue_is_resolved_once_with_the_default_from_settings() -> None:
    gpu_default = Settings(default_queue="gpu")  # type: ignore[call-arg]
    assert resolve_submission(JobSubmission.model_validate({}), gpu_default).queue == "gpu"
    asked = JobSubmission.model_validate({"resources": {"queue": "cpu"}})
    assert resolve_submission(asked, gpu_default).queue == "cpu"


def test_deep_merge_replaces_lists_and_scalars() -> None:
    merged = deep_merge({"a": {"b": 1, "c": [1, 2]}, "d": 1}, {"a": {"c": [3]}, "d": 2})
    assert merged == {"a": {"b": 1, "c": [3]}, "d": 2}


def test_val_monitor_without_validation_split_is_refused_after_merge() -> None:
    with pytest.raises(SpecInvalid) as caught:
        resolve({"preset": "early_stopping", "dataset": {"validation_split": 0}})
    assert caught.value.errors[0].field == "regularization.early_stopping.monitor"


def test_runtime_over_the_limit_is_refused() -> None:
    with pytest.raises(SpecInvalid) as caught:
        resolve({"resources": {"max_runtime_seconds": 100}}, max_runtime_seconds_limit=50)
    assert caught.value.errors[0].field == "resources.max_runtime_seconds"


def test_layer_objects_override_global_regularization() -> None:
    spec = JobSpec.model_validate({"model": {"hidden_layers": [64, {"units": 32, "dropout": 0.5}]}})
    assert spec.model.layer_units() == [64, 32]
    mnist = BUILTIN_SHAPES["mnist"].data_shape(None)
    assert spec.model.plan(mnist).parameters == (784 + 1) * 64 + (64 + 1) * 32 + (32 + 1) * 10
