"""Studies that search: a space of spec values to sample, the sampler and the pruner, the
budgets, and what a search shows of its trials. Pydantic only, for the client."""

import math
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Discriminator, Field, Tag, model_validator

from shared.models.spec import SpecModel

MAX_SPACE_PATHS = 16
MAX_CHOICES = 64
MAX_TRIALS = 1000

SamplerName = Literal["tpe", "random", "grid", "qmc"]
"""Optuna's samplers offered: TPE (the default), random, an exhaustive grid of a finite space,
and quasi-Monte Carlo (Sobol)."""
PrunerName = Literal["median", "asha", "hyperband", "none"]
"""Optuna's pruners offered: the median rule, asynchronous successive halving, Hyperband, none."""
EndReason = Literal["max_trials", "epoch_budget", "space_exhausted", "space_invalid", "cancelled"]
TrialState = Literal[
    "queued", "running", "complete", "pruned", "failed", "invalid", "cancelled", "warm_start"
]


class FloatRange(SpecModel):
    low: float
    high: float
    log: bool = Field(False, description="Sample on a log scale (`low` above 0).")

    @model_validator(mode="after")
    def _ordered(self) -> "FloatRange":
        if not (math.isfinite(self.low) and math.isfinite(self.high)) or self.low >= self.high:
            raise ValueError("high must be above low, both finite")
        if self.log and self.low <= 0:
            raise ValueError("a log scale starts above 0")
        return self


class IntRange(SpecModel):
    low: int
    high: int
    step: int = Field(1, ge=1)
    log: bool = Field(False, description="Sample on a log scale (`low` at least 1, `step` 1).")

    @model_validator(mode="after")
    def _ordered(self) -> "IntRange":
        if self.low >= self.high:
            raise ValueError("high must be above low")
        if self.log and (self.low < 1 or self.step != 1):
            raise ValueError("a log scale starts at 1 or above, with step 1")
        return self


class FloatSpace(SpecModel):
    float: FloatRange


class IntSpace(SpecModel):
    int: IntRange


class ChoiceSpace(SpecModel):
    choice: list[Any] = Field(
        min_length=1,
        max_length=MAX_CHOICES,
        description="Values to choose from; a value may be a whole layer list.",
    )


DISTRIBUTION_KINDS = ("float", "int", "choice")


def _distribution_kind(value: Any) -> str | None:
    """Which of the three a distribution is, by its one key (so an error names that one only)."""
    if isinstance(value, dict):
        return next((kind for kind in DISTRIBUTION_KINDS if kind in value), None)
    return next((kind for kind in DISTRIBUTION_KINDS if hasattr(value, kind)), None)


Distribution = Annotated[
    Annotated[FloatSpace, Tag("float")]
    | Annotated[IntSpace, Tag("int")]
    | Annotated[ChoiceSpace, Tag("choice")],
    Discriminator(
        _distribution_kind,
        custom_error_type="distribution",
        custom_error_message="give one of float, int or choice",
    ),
]


class SamplerOptions(SpecModel):
    type: SamplerName = "tpe"
    seed: int | None = Field(None, description="Seed the sampler, for a search that can be repeated.")
    startup_trials: int | None = Field(
        None, ge=1, le=100, description="TPE: random trials before it models the space (Optuna's default 10)."
    )


class PrunerOptions(SpecModel):
    type: PrunerName = "median"
    min_epochs: int = Field(
        1,
        ge=1,
        description="The fewest epochs a trial trains before it may be pruned (ASHA's and Hyperband's "
        "minimum resource).",
    )
    reduction_factor: int = Field(
        3, ge=2, le=10, description="ASHA and Hyperband: how many trials one promotion keeps one of."
    )
    startup_trials: int = Field(5, ge=0, description="Median: trials that finish before any is pruned.")


Sampler = Annotated[
    SamplerName | SamplerOptions, Field(description="A sampler's name, or an object with its options.")
]
Pruner = Annotated[
    PrunerName | PrunerOptions, Field(description="A pruner's name, or an object with its options.")
]


def sampler_options(sampler: SamplerName | SamplerOptions) -> SamplerOptions:
    """A sampler given by name or with options, as options."""
    return SamplerOptions(type=sampler) if isinstance(sampler, str) else sampler


def pruner_options(pruner: PrunerName | PrunerOptions) -> PrunerOptions:
    """A pruner given by name or with options, as options."""
    return PrunerOptions(type=pruner) if isinstance(pruner, str) else pruner


class SearchConfig(BaseModel):
    """How a study searches, as stored with it."""

    base: dict[str, Any] = Field(default_factory=dict, description="What every trial's job starts from.")
    space: dict[str, Distribution]
    trial_epochs: int = Field(10, description="The most epochs one trial trains.")
    sampler: SamplerOptions
    pruner: PrunerOptions
    max_trials: int
    max_total_epochs: int | None
    warm_start: list[str] = Field(default_factory=list)


class TrialView(BaseModel):
    """One trial of a search: the point it tried and how it went."""

    number: int
    job_id: str | None = Field(
        description="The job it ran as; null for a warm start's trial or an invalid point."
    )
    params: dict[str, Any]
    state: TrialState
    value: float | None = Field(
        description="The objective's best value over its epochs (the last reported when pruned)."
    )
    epochs: int = Field(description="Epochs it trained.")
    error: str | None = None


class SearchView(BaseModel):
    """A search's trials, best trial, importances and budgets."""

    sampler: SamplerOptions
    pruner: PrunerOptions
    max_trials: int
    max_total_epochs: int | None
    trials_started: int = Field(description="Trials that ran as jobs (invalid points and warm starts aside).")
    epochs_spent: int
    end_reason: EndReason | None = Field(description="Why the search ended; null while it goes on.")
    best_trial: TrialView | None
    importances: dict[str, float] = Field(
        description="Each parameter's importance (fANOVA), once two trials completed."
    )
    trials: list[TrialView]
