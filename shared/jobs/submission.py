"""From what a client posts to the spec that is stored: presets, defaults and feasibility."""

from collections.abc import Sequence
from typing import Any

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from shared.errors import FieldError, SpecInvalid
from shared.models.presets import PRESETS, deep_merge
from shared.models.spec import LAYER_OBJECT_TAG, JobSpec, JobSubmission
from shared.settings import Settings
from shared.webhooks.targets import submission_refusal


def field_path(loc: Sequence[int | str]) -> str:
    """A pydantic location as a dotted path (``model.hidden_layers.2.units``)."""
    return ".".join(str(part) for part in loc if part != LAYER_OBJECT_TAG)


def field_error(detail: ErrorDetails, loc_prefix_len: int = 0) -> FieldError:
    """One pydantic error as a ``FieldError``; cross-field errors name their field in ``ctx``."""
    ctx = detail.get("ctx") or {}
    field = ctx.get("field") or field_path(detail["loc"][loc_prefix_len:]) or "body"
    return FieldError(field=str(field), message=detail["msg"], type=detail["type"])


def field_errors(exc: ValidationError) -> list[FieldError]:
    """Every error of a spec validation, with its field path."""
    return [field_error(detail) for detail in exc.errors(include_url=False)]


def resolve_submission(submission: JobSubmission, settings: Settings) -> JobSpec:
    """The full spec a submission asks for: its preset (if any) with the posted fields on top.

    Raises ``SpecInvalid`` naming each bad field, including limits that make the job infeasible.
    """
    overrides = submission.model_dump(exclude_unset=True, exclude={"preset"})
    base = PRESETS[submission.preset].spec().model_dump() if submission.preset else {}
    spec = validate_spec(deep_merge(base, overrides))
    if spec.resources.queue is None:
        resources = spec.resources.model_copy(update={"queue": settings.default_queue})
        spec = spec.model_copy(update={"resources": resources})
    check_feasible(spec, settings)
    check_device_options(spec)
    check_notify_target(spec, settings)
    return spec


def validate_spec(data: dict[str, Any]) -> JobSpec:
    """``data`` as a ``JobSpec``, or ``SpecInvalid``."""
    try:
        return JobSpec.model_validate(data)
    except ValidationError as exc:
        raise SpecInvalid(field_errors(exc)) from None


def check_feasible(spec: JobSpec, settings: Settings) -> None:
    """Refuse, at submit time, a spec no worker may run under this service's limits."""
    errors = []
    count = spec.model.parameter_count()
    if count > settings.max_model_parameters:
        errors.append(
            FieldError(
                "model.hidden_layers",
                f"the model has {count:,} trainable parameters, over the limit of "
                f"{settings.max_model_parameters:,}",
                "limit_exceeded",
            )
        )
    limits = (
        ("training.epochs", spec.training.epochs, settings.max_epochs, "epochs"),
        ("training.batch_size", spec.training.batch_size, settings.max_batch_size, "samples"),
    )
    for field, value, limit, unit in limits:
        if value > limit:
            errors.append(FieldError(field, f"{value} {unit} is over the limit of {limit}", "limit_exceeded"))
    if spec.resources.max_runtime_seconds > settings.max_runtime_seconds_limit:
        errors.append(
            FieldError(
                "resources.max_runtime_seconds",
                f"{spec.resources.max_runtime_seconds} s is over the limit of "
                f"{settings.max_runtime_seconds_limit} s",
                "limit_exceeded",
            )
        )
    if errors:
        raise SpecInvalid(errors)


def check_device_options(spec: JobSpec) -> None:
    """Refuse mixed precision on the cpu queue: CPUs gain no speed from float16 and lose precision."""
    if spec.training.mixed_precision and spec.resources.queue == "cpu":
        raise SpecInvalid(
            [
                FieldError(
                    "training.mixed_precision",
                    "mixed precision speeds up GPUs only; on the cpu queue it would lose precision for "
                    "nothing: set resources.queue to gpu, or mixed_precision to false",
                    "device_mismatch",
                )
            ]
        )


def check_notify_target(spec: JobSpec, settings: Settings) -> None:
    """Refuse a webhook URL whose host is a non-public address, unless the service allows them."""
    if spec.notify is None:
        return
    refusal = submission_refusal(spec.notify.url, settings.webhook_allow_private)
    if refusal is not None:
        raise SpecInvalid([FieldError("notify.url", refusal, "webhook_target")])
