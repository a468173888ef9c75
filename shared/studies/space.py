"""A search's space as Optuna's distributions, and a sampled point as the job it submits.

Optuna's categorical values must be plain scalars: a choice that is not one (a whole layer
list, say) goes to Optuna as its JSON text, and comes back as the value itself.
"""

import itertools
import json
import math
import random
from collections.abc import Sequence
from typing import Any

from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import FrozenTrial

from shared.errors import FieldError, SpecInvalid
from shared.models.presets import deep_merge
from shared.models.search import ChoiceSpace, Distribution, FloatSpace, IntSpace
from shared.studies.expansion import check_grid_paths, nested

SCALARS = (str, int, float, bool, type(None))
MAX_GRID_POINTS = 10_000


def encoded(value: Any) -> Any:
    """A choice as Optuna keeps it: a scalar as is, anything else as its JSON text."""
    return value if isinstance(value, SCALARS) else json.dumps(value, sort_keys=True)


def to_optuna(space: dict[str, Distribution]) -> dict[str, BaseDistribution]:
    """Each path's distribution in Optuna's terms."""
    result: dict[str, BaseDistribution] = {}
    for path, distribution in space.items():
        if isinstance(distribution, FloatSpace):
            bounds = distribution.float
            result[path] = FloatDistribution(bounds.low, bounds.high, log=bounds.log)
        elif isinstance(distribution, IntSpace):
            ints = distribution.int
            result[path] = IntDistribution(ints.low, ints.high, log=ints.log, step=ints.step)
        else:
            result[path] = CategoricalDistribution([encoded(v) for v in distribution.choice])
    return result


def decoded(space: dict[str, Distribution], params: dict[str, Any]) -> dict[str, Any]:
    """A sampled point with each choice as its value again."""
    values = {}
    for path, value in params.items():
        distribution = space.get(path)
        is_text = isinstance(distribution, ChoiceSpace) and isinstance(value, str)
        values[path] = _choice_of(distribution, value) if is_text else value
    return values


def _choice_of(distribution: Any, value: str) -> Any:
    for choice in distribution.choice:
        if encoded(choice) == value:
            return choice
    return value


def grid(space: dict[str, Distribution]) -> dict[str, list[Any]] | None:
    """The space's every point per path, for an exhaustive search; None when a path is a float
    range (which has no points to list)."""
    points: dict[str, list[Any]] = {}
    for path, distribution in space.items():
        if isinstance(distribution, FloatSpace):
            return None
        if isinstance(distribution, IntSpace):
            ints = distribution.int
            points[path] = list(range(ints.low, ints.high + 1, ints.step))
        else:
            points[path] = [encoded(v) for v in distribution.choice]
    return points


def next_point(
    space: dict[str, Distribution], drawn: Sequence[FrozenTrial], seed: int | None
) -> dict[str, Any]:
    """The first point of the space's grid, in an order shuffled by ``seed``, that no trial
    drew yet (in Optuna's terms); the first drawn again when every one was (the search ends)."""
    points = grid(space)
    assert points is not None, "a grid search's space is checked to have a grid"
    every = [dict(zip(points, values, strict=True)) for values in itertools.product(*points.values())]
    random.Random(seed).shuffle(every)
    seen = {_key(trial.params) for trial in drawn}
    return next((point for point in every if _key(point) not in seen), every[0])


def _key(params: dict[str, Any]) -> str:
    return json.dumps(params, sort_keys=True, default=str)


def grid_size(points: dict[str, list[Any]]) -> int:
    """How many points a grid has."""
    return math.prod(len(values) for values in points.values())


def check_space(space: dict[str, Distribution], sampler: str) -> None:
    """Refuse paths that name no spec field or lie inside another, and a grid search of a space
    that is not a finite, listable one."""
    check_grid_paths(dict(space), field="space")
    if sampler != "grid":
        return
    points = grid(space)
    if points is None:
        raise SpecInvalid(
            [
                FieldError(
                    "sampler", "a grid search needs choices and int ranges only (a float range has no grid)"
                )
            ]
        )
    if grid_size(points) > MAX_GRID_POINTS:
        raise SpecInvalid([FieldError("space", f"a grid of more than {MAX_GRID_POINTS} points")])


def submission_body(base: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    """The job a sampled point submits: the base with each sampled path set."""
    return deep_merge(base, nested(list(values), list(values.values())))


def trial_name(values: dict[str, Any]) -> str:
    """A trial's point in a few words: ``learning_rate=0.003,l2=1e-05``."""

    def short(value: Any) -> str:
        return (
            f"{value:.4g}"
            if isinstance(value, float)
            else json.dumps(value)
            if not isinstance(value, SCALARS)
            else str(value)
        )

    words = (f"{path.rsplit('.', 1)[-1]}={short(value)}" for path, value in values.items())
    return ",".join(itertools.islice(words, 8))[:100]


def most_epochs(space: dict[str, Distribution], feasible_epochs: int) -> int:
    """The most epochs one trial may train: the space's largest when it samples
    ``training.epochs``, else what the base asks for (a valid point's)."""
    sampled = space.get("training.epochs")
    if isinstance(sampled, IntSpace):
        return sampled.int.high
    if isinstance(sampled, ChoiceSpace):
        return max(int(value) for value in sampled.choice if isinstance(value, int))
    return feasible_epochs
