"""Studies: several variants of one base spec trained as ordinary jobs, and ranked.

A study names its variants, or a grid over spec fields that expands to their product; the
preset ``article`` is the case study's six variants. Every variant is validated before any
job is created, and a bad one is a 422 that names it.
"""

import itertools
import math
from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, ValidationError, model_validator

from shared.errors import FieldError, SpecInvalid
from shared.jobs.submission import field_errors, resolve_submission
from shared.models.presets import PRESETS, deep_merge
from shared.models.spec import JobSpec, JobSubmission, LoggedMetric, SpecModel, cross_field_error
from shared.settings import Settings

MAX_VARIANTS = 64
GridPath = str


class Variant(SpecModel):
    name: str = Field(min_length=1, max_length=100, description="The variant's name in the study.")
    overrides: dict[str, Any] = Field(default_factory=dict, description="Spec fields over the base.")


class Objective(SpecModel):
    metric: LoggedMetric = Field("val_accuracy", description="The epoch metric variants are ranked by.")
    mode: Literal["min", "max"] = Field("max", description="Whether lower or higher is better.")


class StudyRequest(SpecModel):
    """What `POST /v1/studies` takes."""

    name: str | None = Field(None, min_length=1, max_length=100)
    preset: Literal["article"] | None = Field(
        None,
        description="`article`: the six preset variants (baseline, l2, l1, dropout, augmentation, "
        "early_stopping), each with the base's overrides.",
    )
    base: dict[str, Any] = Field(
        default_factory=dict,
        description="A job submission (a spec, or a preset with overrides) every variant starts from.",
    )
    variants: list[Variant] | None = Field(None, min_length=1, max_length=MAX_VARIANTS)
    grid: dict[GridPath, Annotated[list[Any], Field(max_length=MAX_VARIANTS)]] | None = Field(
        None,
        min_length=1,
        max_length=8,
        description='Dotted spec paths and their values (`{"regularization.l2": [1e-5, 1e-4]}`); the '
        "study has one variant per combination.",
    )
    objective: Objective = Field(default_factory=Objective)
    max_parallel: int | None = Field(
        None, ge=1, le=MAX_VARIANTS, description="Most variants training at once."
    )

    @model_validator(mode="after")
    def _one_source_of_variants(self) -> "StudyRequest":
        given = [name for name in ("preset", "variants", "grid") if getattr(self, name) is not None]
        if len(given) != 1:
            raise cross_field_error("variants", "give exactly one of preset, variants or grid")
        return self


class StudyJob(BaseModel):
    variant: str
    job_id: str


class StudyRecord(BaseModel):
    """A stored study: its request's objective and cap, and its jobs in variant order."""

    id: str
    tenant: str
    name: str | None
    objective: Objective
    max_parallel: int | None
    jobs: list[StudyJob]
    created_at: datetime


def expand(request: StudyRequest, settings: Settings) -> list[tuple[str, JobSpec, str | None]]:
    """Each variant's name, full spec and preset; ``SpecInvalid`` naming every bad variant."""
    points = math.prod(len(values) for values in (request.grid or {}).values())
    if points > MAX_VARIANTS:
        raise SpecInvalid([FieldError("grid", f"{points} variants; a study has at most {MAX_VARIANTS}")])
    submissions = _submissions(request)
    expanded: list[tuple[str, JobSpec, str | None]] = []
    errors: list[FieldError] = []
    for name, where, body in submissions:
        try:
            submission = JobSubmission.model_validate(body)
            spec = resolve_submission(submission, settings)
        except ValidationError as exc:
            errors += [
                FieldError(f"{where}.{e.field}", f"{name}: {e.message}", e.type) for e in field_errors(exc)
            ]
            continue
        except SpecInvalid as exc:
            errors += [FieldError(f"{where}.{e.field}", f"{name}: {e.message}", e.type) for e in exc.errors]
            continue
        expanded.append((name, spec.model_copy(update={"name": spec.name or name}), submission.preset))
    if errors:
        raise SpecInvalid(errors)
    return expanded


def _submissions(request: StudyRequest) -> list[tuple[str, str, dict[str, Any]]]:
    if request.preset == "article":
        return [(name, f"preset.{name}", deep_merge(request.base, {"preset": name})) for name in PRESETS]
    if request.variants is not None:
        return [
            (v.name, f"variants.{i}.overrides", deep_merge(request.base, v.overrides))
            for i, v in enumerate(request.variants)
        ]
    assert request.grid is not None
    check_grid_paths(request.grid)
    paths = list(request.grid)
    return [
        (grid_name(paths, values), "grid", deep_merge(request.base, nested(paths, values)))
        for values in itertools.product(*request.grid.values())
    ]


def check_grid_paths(grid: dict[GridPath, list[Any]]) -> None:
    """Refuse grid paths that name no spec field, and empty value lists."""
    errors = []
    for path, values in grid.items():
        if not _is_spec_path(path):
            errors.append(FieldError(f"grid.{path}", "names no field of the job spec", "unknown_path"))
        elif not values:
            errors.append(FieldError(f"grid.{path}", "needs at least one value", "too_short"))
    if errors:
        raise SpecInvalid(errors)


def _is_spec_path(path: str) -> bool:
    model: Any = JobSpec
    for part in path.split("."):
        fields = getattr(model, "model_fields", None)
        if not fields or part not in fields:
            return False
        model = fields[part].annotation
        model = next((arg for arg in getattr(model, "__args__", ()) if hasattr(arg, "model_fields")), model)
    return True


def nested(paths: Sequence[str], values: Sequence[Any]) -> dict[str, Any]:
    """``{"a.b": 1}`` as ``{"a": {"b": 1}}``, for every path."""
    result: dict[str, Any] = {}
    for path, value in zip(paths, values, strict=True):
        *parents, leaf = path.split(".")
        node = result
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return result


def grid_name(paths: Sequence[str], values: Sequence[Any]) -> str:
    """A variant's name from its grid point: ``l2=0.0001,dropout=0.25``."""
    return ",".join(f"{path.rsplit('.', 1)[-1]}={value}" for path, value in zip(paths, values, strict=True))
