"""Studies: several variants of one base spec trained as ordinary jobs, and ranked: the request,
the stored study and its leaderboard's rows."""

from datetime import datetime
from typing import Annotated, Any, Literal, TypeGuard

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema, model_validator

from shared.models.jobs import JOB_ID_PATTERN, JobStatus, StopReason
from shared.models.search import (
    MAX_SPACE_PATHS,
    MAX_TRIALS,
    Distribution,
    EndReason,
    Pruner,
    Sampler,
    SearchConfig,
    pruner_options,
    sampler_options,
)
from shared.models.spec import JobSpec, LoggedMetric, SpecModel, cross_field_error, one_of_fields

MAX_VARIANTS = 64


def spec_paths(model: type[BaseModel] = JobSpec, prefix: str = "") -> list[str]:
    """The dotted path of every field of the job spec, nested ones too (``training``,
    ``training.epochs``): what a grid may vary."""
    paths = []
    for name, field in model.model_fields.items():
        paths.append(f"{prefix}{name}")
        # A field of a spec part (or of an optional one) has fields of its own.
        options = getattr(field.annotation, "__args__", ())
        part = next((arg for arg in options if _is_model(arg)), field.annotation)
        if _is_model(part):
            paths += spec_paths(part, f"{prefix}{name}.")
    return paths


def _is_model(annotation: object) -> TypeGuard[type[BaseModel]]:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


GRID_PATHS = frozenset(spec_paths())
# Checked by the study's expansion, which names each unknown path; the document lists them.
GridPath = Annotated[str, WithJsonSchema({"type": "string", "enum": spec_paths()})]


class Variant(SpecModel):
    name: str = Field(min_length=1, max_length=100, description="The variant's name in the study.")
    overrides: dict[str, Any] = Field(default_factory=dict, description="Spec fields over the base.")


class Objective(SpecModel):
    metric: LoggedMetric = Field("val_accuracy", description="The epoch metric variants are ranked by.")
    mode: Literal["min", "max"] = Field("max", description="Whether lower or higher is better.")


class StudyRequest(SpecModel):
    """What `POST /v1/studies` takes."""

    # What _one_source_of_variants enforces, in the OpenAPI document.
    model_config = ConfigDict(json_schema_extra=one_of_fields("preset", "variants", "grid", "space"))

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
    grid: dict[GridPath, Annotated[list[Any], Field(min_length=1, max_length=MAX_VARIANTS)]] | None = Field(
        None,
        min_length=1,
        max_length=8,
        description='Dotted spec paths and their values (`{"regularization.l2": [1e-5, 1e-4]}`); the '
        "study has one variant per combination.",
    )
    space: dict[GridPath, Distribution] | None = Field(
        None,
        min_length=1,
        max_length=MAX_SPACE_PATHS,
        description='Dotted spec paths and what to sample for each: `{"float": {"low", "high", "log"}}`, '
        '`{"int": {"low", "high", "step", "log"}}` or `{"choice": [...]}`; the study searches it, a trial '
        "a job.",
    )
    sampler: Sampler | None = Field(None, description="With `space`: how it is sampled (`tpe` by default).")
    pruner: Pruner | None = Field(
        None, description="With `space`: what stops a trial at an epoch record (`median` by default)."
    )
    max_trials: int | None = Field(
        None, ge=1, le=MAX_TRIALS, description="With `space`: the most trials it runs (20 by default)."
    )
    max_total_epochs: int | None = Field(
        None, ge=1, description="With `space`: the most epochs its trials train in all."
    )
    warm_start: list[Annotated[str, Field(pattern=JOB_ID_PATTERN)]] | None = Field(
        None,
        max_length=16,
        description="With `space`: earlier searches of the tenant whose finished trials the sampler is "
        "told first.",
    )
    objective: Objective = Field(default_factory=Objective)
    max_parallel: int | None = Field(
        None, ge=1, le=MAX_VARIANTS, description="Most variants (or trials) training at once."
    )

    @model_validator(mode="after")
    def _one_source_of_variants(self) -> "StudyRequest":
        given = [name for name in ("preset", "variants", "grid", "space") if getattr(self, name) is not None]
        if len(given) != 1:
            raise cross_field_error("variants", "give exactly one of preset, variants, grid or space")
        if self.space is None:
            for name in SEARCH_ONLY:
                if getattr(self, name) is not None:
                    raise cross_field_error(name, f"{name} goes with space only")
        return self

    def search_config(self) -> SearchConfig | None:
        """How the study searches, with its defaults; None for a study of variants."""
        if self.space is None:
            return None
        return SearchConfig(
            space=self.space,
            sampler=sampler_options(self.sampler or "tpe"),
            pruner=pruner_options(self.pruner or "median"),
            max_trials=self.max_trials or DEFAULT_MAX_TRIALS,
            max_total_epochs=self.max_total_epochs,
            warm_start=self.warm_start or [],
        )


SEARCH_ONLY = ("sampler", "pruner", "max_trials", "max_total_epochs", "warm_start")
DEFAULT_MAX_TRIALS = 20


class StudyJob(BaseModel):
    variant: str
    job_id: str
    trial: int | None = Field(None, description="A search's trial number that the job runs.")


class StudyRecord(BaseModel):
    """A stored study: its request's objective and cap, and its jobs in variant order."""

    id: str
    tenant: str
    name: str | None
    objective: Objective
    max_parallel: int | None
    jobs: list[StudyJob]
    created_at: datetime
    search: SearchConfig | None = Field(None, description="How it searches; null for a study of variants.")
    end_reason: EndReason | None = Field(None, description="Why a search ended; null while it goes on.")


class LeaderboardRow(BaseModel):
    rank: int
    variant: str
    job_id: str
    status: JobStatus
    best_value: float | None = Field(description="The objective's best value over the recorded epochs.")
    best_epoch: int | None
    test_accuracy: float | None
    stopped_epoch: int | None
    stop_reason: StopReason | None
    gap_at_best: float | None = Field(description="Training minus validation accuracy at the best epoch.")
    mean_epoch_seconds: float | None
