"""A study's jobs: its variants (named, a grid's product, or the article's presets), each
validated as a submission before any job is created; a bad one is a 422 that names it."""

import itertools
import math
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from pydantic import ValidationError

from shared.errors import FieldError, SpecInvalid, field_errors
from shared.jobs.submission import ResolvedJob, resolve_submission
from shared.models.presets import ARTICLE_PRESETS, deep_merge
from shared.models.spec import JobSubmission
from shared.models.studies import GRID_PATHS, MAX_VARIANTS, GridPath, StudyRequest
from shared.settings import Settings


def expand(request: StudyRequest, settings: Settings) -> list[tuple[str, ResolvedJob]]:
    """Each variant's name and job; ``SpecInvalid`` naming every bad variant."""
    points = math.prod(len(values) for values in (request.grid or {}).values())
    if points > MAX_VARIANTS:
        raise SpecInvalid([FieldError("grid", f"{points} variants; a study has at most {MAX_VARIANTS}")])
    submissions = _submissions(request)
    expanded: list[tuple[str, ResolvedJob]] = []
    errors: list[FieldError] = []
    for name, where, body in submissions:
        try:
            submission = JobSubmission.model_validate(body)
            job = resolve_submission(submission, settings)
        except ValidationError as exc:
            errors += [
                FieldError(f"{where}.{e.field}", f"{name}: {e.message}", e.type) for e in field_errors(exc)
            ]
            continue
        except SpecInvalid as exc:
            errors += [FieldError(f"{where}.{e.field}", f"{name}: {e.message}", e.type) for e in exc.errors]
            continue
        named = job.spec.model_copy(update={"name": job.spec.name or name})
        expanded.append((name, replace(job, spec=named)))
    if errors:
        raise SpecInvalid(errors)
    return expanded


def _submissions(request: StudyRequest) -> list[tuple[str, str, dict[str, Any]]]:
    if request.preset == "article":
        return [
            (name, f"preset.{name}", deep_merge(request.base, {"preset": name})) for name in ARTICLE_PRESETS
        ]
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


def check_grid_paths(grid: dict[GridPath, Any], field: str = "grid") -> None:
    """Refuse paths (of ``grid``, or of a search's ``space``: ``field``) that name no spec field,
    and a path inside another one (whose values would replace the part it varies); the request's
    model refused empty value lists."""
    errors = [
        FieldError(f"{field}.{path}", "names no field of the job spec", "unknown_path")
        for path in grid
        if path not in GRID_PATHS
    ]
    errors += [
        FieldError(
            f"{field}.{path}", f"lies inside {field}.{outer}; vary one or the other", "overlapping_path"
        )
        for path in grid
        for outer in grid
        if path.startswith(f"{outer}.")
    ]
    if errors:
        raise SpecInvalid(errors)


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
