"""Submissions: from what a client posts to the job that is stored and sent (its preset, its
queue and its feasibility checked at submit time), and the submission itself."""

import hashlib
import json
import math
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from shared.datasets.store import DatasetStore
from shared.errors import FieldError, SpecInvalid, field_errors
from shared.jobs.creation import Idempotency
from shared.jobs.dispatch import Dispatch
from shared.models.jobs import JobRecord, JobStatus, new_job_id
from shared.models.network import DataShape, NetworkInfeasible, NetworkPlan, NetworkSummary, Task
from shared.models.presets import PRESETS, deep_merge
from shared.models.spec import (
    CLASSIFICATION_ONLY,
    REGRESSION_ONLY,
    JobSpec,
    JobSubmission,
    PresetName,
    QueueName,
)
from shared.ops.registry import WorkerRegistry
from shared.settings import Settings
from shared.webhooks.targets import submission_refusal


@dataclass(frozen=True)
class ResolvedJob:
    """What a submission asks for: the full spec, the queue it goes to and its preset."""

    spec: JobSpec
    queue: QueueName
    preset: PresetName | None = None


def resolve_submission(submission: JobSubmission, settings: Settings) -> ResolvedJob:
    """The full spec a submission asks for (its preset, if any, with the posted fields on top)
    and its queue (the service's default when it names none).

    Raises ``SpecInvalid`` naming each bad field, including limits that make the job infeasible.
    """
    overrides = submission.model_dump(exclude_unset=True, exclude={"preset"})
    # Only what the preset sets: a posted ``model.layers`` then replaces its short-form default.
    base = PRESETS[submission.preset].spec().model_dump(exclude_unset=True) if submission.preset else {}
    spec = validate_spec(deep_merge(base, overrides))
    queue = spec.resources.queue or settings.default_queue
    check_feasible(spec, settings)
    check_device_options(spec, queue)
    check_notify_target(spec, settings)
    return ResolvedJob(spec, queue, submission.preset)


def validate_spec(data: dict[str, Any]) -> JobSpec:
    """``data`` as a ``JobSpec``, or ``SpecInvalid``."""
    try:
        return JobSpec.model_validate(data)
    except ValidationError as exc:
        raise SpecInvalid(field_errors(exc)) from None


def check_feasible(spec: JobSpec, settings: Settings) -> None:
    """Refuse, at submit time, a spec no worker may run under this service's limits."""
    errors = []
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


def check_trainable(spec: JobSpec, tenant: str, datasets: DatasetStore, settings: Settings) -> NetworkPlan:
    """The spec's network planned on its dataset (a built-in, or an upload the tenant owns), or
    ``SpecInvalid`` naming the dataset, the task or the layer that cannot be, or a parameter count
    over the limit."""
    shape = datasets.shape_of(spec, tenant)
    try:
        data = shape.data_shape(spec.model.task)
        plan = spec.model.plan(data)
    except NetworkInfeasible as exc:
        raise SpecInvalid([FieldError(exc.field, exc.message, "infeasible_network")]) from None
    errors = regularization_errors(spec, data)
    if spec.regularization.early_stopping is not None:
        errors += metric_errors(spec.regularization.early_stopping.monitor, data.task, MONITOR_FIELD)
    if errors:
        raise SpecInvalid(errors)
    if plan.parameters > settings.max_model_parameters:
        field = "model.layers" if spec.model.layers is not None else "model.hidden_layers"
        message = (
            f"the model has {plan.parameters:,} trainable parameters, over the limit of "
            f"{settings.max_model_parameters:,}"
        )
        raise SpecInvalid([FieldError(field, message, "limit_exceeded")])
    return plan


MONITOR_FIELD = "regularization.early_stopping.monitor"
MAX_ZCA_DIMENSION = 3072
"""Largest sample ZCA whitens (32x32x3): its matrix is D x D, fitted and applied per sample."""


def metric_errors(metric: str, task: Task, field: str) -> list[FieldError]:
    """A refusal of ``metric`` when the task does not log it (accuracy is for classes, MAE for
    regression)."""
    logged = REGRESSION_ONLY if task == "classification" else CLASSIFICATION_ONLY
    if metric not in logged:
        return []
    return [FieldError(field, f"a {task} job does not log {metric!r}", "metric_not_logged")]


def regularization_errors(spec: JobSpec, data: DataShape) -> list[FieldError]:
    """Refusals of augmentation the data cannot take: image transforms on feature vectors, and
    ZCA past the dimension it can whiten."""
    augmentation, field = spec.regularization.augmentation, "regularization.augmentation"
    asked = [
        name
        for name in (
            "rotation",
            "translation",
            "zoom",
            "horizontal_flip",
            "brightness",
            "contrast",
            "zca_whitening",
        )
        if getattr(augmentation, name)
    ]
    if not data.images and asked:
        message = "image augmentation on feature vectors; regularize them with a gaussian_noise layer"
        return [FieldError(f"{field}.{asked[0]}", message, "infeasible_augmentation")]
    dimension = math.prod(data.sample)
    if augmentation.zca_whitening and dimension > MAX_ZCA_DIMENSION:
        message = (
            f"ZCA whitening of {dimension} values per sample needs a {dimension} x {dimension} matrix; "
            f"it is offered up to {MAX_ZCA_DIMENSION} (32x32x3)"
        )
        return [FieldError(f"{field}.zca_whitening", message, "infeasible_augmentation")]
    return []


def check_device_options(spec: JobSpec, queue: QueueName) -> None:
    """Refuse mixed precision and GPU memory on the cpu queue: CPUs gain no speed from float16 and
    lose precision, and have no GPU memory to give."""
    if spec.resources.gpu_memory_mb is not None and queue == "cpu":
        message = (
            "GPU memory is asked for on the cpu queue, whose workers have none: set resources.queue to gpu"
        )
        raise SpecInvalid([FieldError("resources.gpu_memory_mb", message, "device_mismatch")])
    if spec.training.mixed_precision and queue == "cpu":
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


def check_slot_memory(spec: JobSpec, queue: QueueName, workers: WorkerRegistry) -> None:
    """Refuse a job that asks for more GPU memory than any live worker of its queue has (a queue
    with no live worker takes it: its workers may come). The workers are read only for a job
    that asks."""
    asked = spec.resources.gpu_memory_mb
    if asked is None:
        return
    serving = [worker for worker in workers.live() if queue in worker.queues]
    if not serving:
        return
    sizes = [worker.slot_memory_mb for worker in serving]
    if any(size is None or size >= asked for size in sizes):
        return
    largest = max(size for size in sizes if size is not None)
    message = f"no worker of queue {queue} has {asked} MiB of GPU memory: the largest slot has {largest} MiB"
    raise SpecInvalid([FieldError("resources.gpu_memory_mb", message, "limit_exceeded")])


def check_notify_target(spec: JobSpec, settings: Settings) -> None:
    """Refuse a webhook URL whose host is a non-public address, unless the service allows them."""
    if spec.notify is None:
        return
    refusal = submission_refusal(spec.notify.url, settings.webhook_allow_private)
    if refusal is not None:
        raise SpecInvalid([FieldError("notify.url", refusal, "webhook_target")])


def submit_job(
    tenant: str,
    submission: JobSubmission,
    idempotency_key: str | None,
    datasets: DatasetStore,
    dispatch: Dispatch,
    settings: Settings,
) -> tuple[JobRecord, bool]:
    """Check a submission and store its job within the tenant's quota, waiting for its turn on
    its queue (``shared.scheduling``).

    Returns the job and whether it is new: with an ``Idempotency-Key`` already used for the same
    body, the job that key created, stored once; if it is still queued, it is made sure to reach
    a worker (its message sent again if it was released), since a client retries exactly when it
    could not tell whether the first went through.
    """
    resolved = resolve_submission(submission, settings)
    plan = check_trainable(resolved.spec, tenant, datasets, settings)
    check_slot_memory(
        resolved.spec, resolved.queue, WorkerRegistry(dispatch.store.redis, dispatch.store.keys)
    )
    record = JobRecord.new(
        new_job_id(), tenant, resolved.spec, resolved.queue, resolved.preset, network=NetworkSummary.of(plan)
    )
    memo = (
        Idempotency(idempotency_key, body_hash(submission), settings.idempotency_seconds)
        if idempotency_key
        else None
    )
    stored, created = dispatch.store.create(
        record, max_active=settings.max_active_jobs_per_tenant, idempotency=memo
    )
    if not created and stored.status is JobStatus.QUEUED:
        dispatch.send(stored)
    return stored, created


def body_hash(submission: JobSubmission) -> str:
    """A digest of what was asked for (fields as posted, in a canonical order)."""
    canonical = json.dumps(submission.model_dump(mode="json", exclude_unset=True), sort_keys=True)
    return hashlib.sha256(canonical.encode()).hexdigest()
