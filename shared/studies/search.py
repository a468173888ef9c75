"""Studies that search a space with Optuna: their trials are ordinary jobs.

Who asks and who tells. A search asks Optuna for its next points in ``advance``: the API process
that creates the study asks for the first ones, and after that whichever worker follows up a
trial's ending (``shared.jobs.endings``) first tells Optuna how the trial went (``tell``) and
then asks for more. ``advance`` holds the study's lock in Redis while it asks, makes the jobs
and writes them into the study (each job and the study record in one script, within the
tenant's quota), so two processes never hand out the same trial, and a point asked by a process
that died before its job was stored is told failed by the next. The worker that trains a trial
reports each epoch record to Optuna and asks its pruner whether the trial goes on (``judge``).
Optuna's state lives in Redis (``shared.studies.journal``), so any process of any host picks a
search up where it was.
"""

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Literal

import optuna
from optuna.trial import FrozenTrial, TrialState
from pydantic import ValidationError

from shared.datasets.store import DatasetStore
from shared.errors import FieldError, SpecInvalid, TooManyRequests, field_errors
from shared.jobs.submission import ResolvedJob, check_trainable, resolve_submission
from shared.models.jobs import (
    EpochRecord,
    JobRecord,
    JobStatus,
    StopReason,
    StudyMembership,
    new_job_id,
    utc_now,
)
from shared.models.network import NetworkPlan, NetworkSummary
from shared.models.search import EndReason, SearchConfig
from shared.models.spec import JobSubmission
from shared.models.studies import Objective, StudyJob, StudyRecord, StudyRequest
from shared.redis.writes import Writes
from shared.settings import Settings
from shared.studies import space as spaces
from shared.studies.journal import journal_prefix, make_pruner, make_sampler, storage_on
from shared.studies.store import StudyStore

log = logging.getLogger(__name__)

FEASIBILITY_DRAWS = 20
"""Random points a new search's space is tried with: none valid is a 422."""
MAX_INVALID_IN_A_ROW = 50
"""Invalid points a search may draw in a row before it ends (``space_invalid``)."""
DEFAULT_PARALLEL = 2
Judge = Callable[[EpochRecord], bool]
"""Asked at each epoch record of a trial: whether its search's pruner stops it there."""
INVALID, WARM_START, JOB = "invalid", "warm_start", "job_id"
"""The user attributes of a trial: why its point was refused, the search it was told from, its job."""


class Search:
    """Creates searches, asks and tells their trials, and judges their epochs."""

    def __init__(self, studies: StudyStore, datasets: DatasetStore, settings: Settings) -> None:
        self.studies, self.store, self.datasets, self.settings = studies, studies.store, datasets, settings
        self.storage = storage_on(self.store.redis, journal_prefix(self.store.keys))

    # -- creation (the API) ----------------------------------------------------------------

    def create(self, request: StudyRequest, tenant: str) -> StudyRecord:
        """Store a new search and start its first trials; ``SpecInvalid`` for a space that can
        only give invalid jobs."""
        asked = request.search_config()
        assert asked is not None
        spaces.check_space(asked.space, asked.sampler.type)
        feasible = self._check_feasible(request.base, asked, tenant)
        config = asked.model_copy(
            update={"base": request.base, "trial_epochs": spaces.most_epochs(asked.space, feasible)}
        )
        study = StudyRecord(
            id=new_job_id(),
            tenant=tenant,
            name=request.name,
            objective=request.objective,
            max_parallel=request.max_parallel or DEFAULT_PARALLEL,
            jobs=[],
            created_at=utc_now(),
            search=config,
        )
        direction: Literal["maximize", "minimize"] = (
            "maximize" if request.objective.mode == "max" else "minimize"
        )
        optuna.create_study(study_name=study.id, storage=self.storage, direction=direction)
        self._warm_start(study, config, tenant)
        self.studies.save(study, new=True)
        self.advance(study.id)
        return self.studies.get(study.id) or study

    def _check_feasible(self, base: dict[str, Any], config: SearchConfig, tenant: str) -> int:
        """The epochs of a valid job the space gives; ``SpecInvalid`` when random points give none."""
        draws = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
        first: SpecInvalid | None = None
        for _ in range(FEASIBILITY_DRAWS):
            values = spaces.decoded(config.space, draws.ask(spaces.to_optuna(config.space)).params)
            try:
                resolved, _ = self._resolve(base, values, tenant)
                return int(resolved.spec.training.epochs)
            except SpecInvalid as exc:
                first = first or exc
        assert first is not None
        raise SpecInvalid([_in_request(error, config) for error in first.errors])

    def _warm_start(self, study: StudyRecord, config: SearchConfig, tenant: str) -> None:
        """Tell the sampler the finished trials of the tenant's earlier searches whose points lie
        in this space."""
        distributions = spaces.to_optuna(config.space)
        target = optuna.load_study(study_name=study.id, storage=self.storage)
        for earlier_id in config.warm_start:
            earlier = self.studies.get(earlier_id)
            if earlier is None or earlier.tenant != tenant or earlier.search is None:
                raise SpecInvalid(
                    [FieldError("warm_start", f"no search with id {earlier_id!r}", "not_found")]
                )
            for trial in self._optuna(earlier).get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
                if set(trial.params) != set(distributions) or not _inside(trial.params, distributions):
                    continue
                told = optuna.trial.create_trial(
                    params=trial.params,
                    distributions=distributions,
                    value=trial.value,
                    user_attrs={WARM_START: earlier_id},
                )
                target.add_trial(told)

    # -- asking and telling (the API at creation, then the workers) ------------------------

    def advance(self, study_id: str) -> list[str]:
        """Ask for trials while the search has room for them, make their jobs and send them; end
        the search when its budget is spent or its space exhausted and nothing is in flight.
        The ids of the jobs sent."""
        with self._lock(study_id):
            study = self.studies.get(study_id)
            if study is None or study.search is None or study.end_reason is not None:
                return []
            return self._advance(study, self._optuna(study))

    def _advance(self, study: StudyRecord, search: optuna.Study) -> list[str]:
        assert study.search is not None
        jobs = {job.id: job for job in self.store.get_many(j.job_id for j in study.jobs) if job is not None}
        self._fail_orphans(study, search)
        sent: list[str] = []
        invalid_in_row = 0
        while True:
            in_flight = [job for job in jobs.values() if not job.status.is_terminal()]
            reason = self._spent(study, jobs, search)
            if reason is not None:
                if not in_flight:
                    self.studies.save(study.model_copy(update={"end_reason": reason}))
                    log.info("study %s: the search ended (%s)", study.id, reason)
                break
            if len(in_flight) >= (study.max_parallel or DEFAULT_PARALLEL):
                break
            if self._at_quota(study.tenant):
                if not in_flight:  # no ending will move it on: the reapers will, once the quota has room
                    self.studies.wait(study.id)
                break
            outcome = self._start_trial(study, search)
            if outcome == "invalid":  # told, and not counted
                invalid_in_row += 1
                if invalid_in_row >= MAX_INVALID_IN_A_ROW and not in_flight:
                    self.studies.save(study.model_copy(update={"end_reason": "space_invalid"}))
                    break
                continue
            if outcome == "quota":
                if not in_flight:
                    self.studies.wait(study.id)
                break
            study, job = outcome
            jobs[job.id] = job
            sent.append(job.id)
            invalid_in_row = 0
        return sent

    def _start_trial(
        self, study: StudyRecord, search: optuna.Study
    ) -> tuple[StudyRecord, JobRecord] | Literal["invalid", "quota"]:
        """Ask for a point and start its job: the study and the job; ``invalid`` for a point that
        gives no valid job, ``quota`` when the tenant's quota refused the job."""
        config = study.search
        assert config is not None
        drawn = search.get_trials(deepcopy=False)
        search.sampler = make_sampler(config.sampler, len(drawn))
        if config.sampler.type == "grid":
            # The next point of the grid not drawn yet, valid or not (Optuna's GridSampler draws
            # a failed point again, and an invalid point fails every time).
            search.enqueue_trial(spaces.next_point(config.space, drawn, config.sampler.seed))
        trial = search.ask(spaces.to_optuna(config.space))
        values = spaces.decoded(config.space, trial.params)
        try:
            job = self._job(study, trial.number, values)
        except SpecInvalid as exc:
            self.storage.set_trial_user_attr(trial._trial_id, INVALID, str(exc)[:500])
            search.tell(trial, state=TrialState.FAIL)
            return "invalid"
        member = StudyJob(variant=job.study.variant if job.study else "", job_id=job.id, trial=trial.number)
        grown = study.model_copy(update={"jobs": [*study.jobs, member]})
        also = Writes()
        also.set(self.store.keys.study(study.id), grown.model_dump_json())
        try:
            self.store.create_together(study.tenant, [job], also, self.settings.max_active_jobs_per_tenant)
        except TooManyRequests:
            search.tell(trial, state=TrialState.FAIL)
            self.storage.set_trial_user_attr(
                trial._trial_id, INVALID, "not started: the tenant's quota was full"
            )
            return "quota"
        self.storage.set_trial_user_attr(trial._trial_id, JOB, job.id)
        log.info("study %s: trial %d is job %s", study.id, trial.number, job.id)
        return grown, job

    def _job(self, study: StudyRecord, number: int, values: dict[str, Any]) -> JobRecord:
        assert study.search is not None
        resolved, plan = self._resolve(study.search.base, values, study.tenant)
        name = f"#{number} {spaces.trial_name(values)}"[:100]
        membership = StudyMembership(id=study.id, variant=name, trial=number)
        return JobRecord.new(
            new_job_id(),
            study.tenant,
            resolved.spec,
            resolved.queue,
            resolved.preset,
            membership,
            NetworkSummary.of(plan),
        )

    def _resolve(
        self, base: dict[str, Any], values: dict[str, Any], tenant: str
    ) -> tuple[ResolvedJob, NetworkPlan]:
        """A point's job, validated as a submission; ``SpecInvalid`` naming what is wrong."""
        body = spaces.submission_body(base, values)
        try:
            submission = JobSubmission.model_validate(body)
        except ValidationError as exc:
            raise SpecInvalid(field_errors(exc)) from None
        resolved = resolve_submission(submission, self.settings)
        plan = check_trainable(resolved.spec, tenant, self.datasets, self.settings)
        return resolved, plan

    def _spent(
        self, study: StudyRecord, jobs: dict[str, JobRecord], search: optuna.Study
    ) -> EndReason | None:
        """Why no trial may start any more, if none may."""
        config = study.search
        assert config is not None
        if len(study.jobs) >= config.max_trials:
            return "max_trials"
        points = spaces.grid(config.space)
        if config.sampler.type == "grid" and points is not None:
            drawn = [t for t in search.get_trials(deepcopy=False) if WARM_START not in t.user_attrs]
            if len(drawn) >= spaces.grid_size(points):  # every point drawn, valid or not
                return "space_exhausted"
        if config.max_total_epochs is not None:
            # What ended trials trained, and what those in flight may still train.
            committed = sum(
                job.progress.epoch if job.status.is_terminal() else job.progress.epochs
                for job in jobs.values()
            )
            if committed + config.trial_epochs > config.max_total_epochs:
                return "epoch_budget"
        return None

    def _at_quota(self, tenant: str) -> bool:
        return self.store.active_count(tenant) >= self.settings.max_active_jobs_per_tenant

    def _fail_orphans(self, study: StudyRecord, search: optuna.Study) -> None:
        """Tell failed the trials asked by a process that died before their job was stored."""
        started = {job.trial for job in study.jobs}
        for trial in search.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            if trial.number not in started:
                self.storage.set_trial_user_attr(
                    trial._trial_id, INVALID, "its job was never made (its asker stopped)"
                )
                search.tell(trial.number, state=TrialState.FAIL)

    def cancel(self, study: StudyRecord) -> None:
        """End the search (it asks for no more trials) and cancel its trials in flight."""
        with self._lock(study.id):
            current = self.studies.get(study.id)
            if current is not None and current.end_reason is None:
                self.studies.save(current.model_copy(update={"end_reason": "cancelled"}))
        self.studies.cancel(study)

    def follow_up(self, job: JobRecord) -> None:
        """What a trial's ending is followed by: Optuna told, and more trials asked for."""
        if job.study is not None:
            self.tell(job)
            self.advance(job.study.id)

    def tell(self, job: JobRecord) -> None:
        """Tell Optuna how the trial ``job`` ran ended: its best objective value, pruned (with
        its last reported value), or failed. Nothing for a trial told already."""
        if job.study is None or job.study.trial is None:
            return
        study = self.studies.get(job.study.id)
        if study is None or study.search is None:
            return
        search = self._optuna(study)
        trial = search.get_trials(deepcopy=False)[job.study.trial]
        if trial.state.is_finished():
            return
        if job.status is JobStatus.SUCCEEDED and job.stop_reason is StopReason.PRUNED:
            search.tell(trial.number, state=TrialState.PRUNED)
            return
        value = best_value(self.store.epoch_records(job.id), study.objective)
        if job.status is JobStatus.SUCCEEDED and value is not None:
            search.tell(trial.number, value)
        else:
            search.tell(trial.number, state=TrialState.FAIL)

    # -- pruning (the worker that trains a trial) ------------------------------------------

    def judge(self, study_id: str, number: int | None) -> Judge | None:
        """What the trainer of trial ``number`` asks at each epoch record: report it, and whether
        the pruner stops the trial there. None for a study that does not search."""
        study = self.studies.get(study_id)
        if study is None or study.search is None or number is None:
            return None
        search = self._optuna(study)
        trial_id = self.storage.get_trial_id_from_study_id_trial_number(search._study_id, number)
        trial = optuna.trial.Trial(search, trial_id)
        metric = study.objective.metric
        last_epoch = _last_epoch(study.search, self.storage.get_trial(trial_id).params)

        def prune(record: EpochRecord) -> bool:
            value = getattr(record, metric)
            frozen = self.storage.get_trial(trial_id)
            if value is None or frozen.state.is_finished():
                return False
            if record.epoch not in frozen.intermediate_values:  # a resumed attempt reports once
                trial.report(float(value), record.epoch)
            # Asked at the last epoch too (ASHA records its rung there), but a trial that trained
            # every epoch is complete: pruning it would save nothing and hide its value.
            return bool(trial.should_prune()) and record.epoch < last_epoch

        return prune

    # -- what users see --------------------------------------------------------------------

    def trials(self, study: StudyRecord) -> list[FrozenTrial]:
        """The search's trials in Optuna, oldest first."""
        return self._optuna(study).get_trials(deepcopy=False)

    def _optuna(self, study: StudyRecord) -> optuna.Study:
        assert study.search is not None
        pruner = make_pruner(study.search.pruner, study.search.trial_epochs)
        return optuna.load_study(study_name=study.id, storage=self.storage, pruner=pruner)

    @contextmanager
    def _lock(self, study_id: str) -> Iterator[None]:
        lock = self.store.redis.lock(self.store.keys.study_lock(study_id), timeout=120, blocking_timeout=60)
        if not lock.acquire():
            raise TimeoutError(f"study {study_id}: its lock was held for a minute")
        try:
            yield
        finally:
            lock.release()


def best_value(records: list[EpochRecord], objective: Objective) -> float | None:
    """The objective's best value over the records."""
    values = [getattr(r, objective.metric) for r in records if getattr(r, objective.metric) is not None]
    if not values:
        return None
    return float(max(values) if objective.mode == "max" else min(values))


def _last_epoch(config: SearchConfig, params: dict[str, Any]) -> int:
    """The epochs a trial asks for: its point's ``training.epochs`` where the space samples it,
    else the search's."""
    epochs = spaces.decoded(config.space, params).get("training.epochs")
    return epochs if isinstance(epochs, int) else config.trial_epochs


def _inside(params: dict[str, Any], distributions: dict[str, Any]) -> bool:
    return all(
        distributions[path]._contains(distributions[path].to_internal_repr(v)) for path, v in params.items()
    )


def _in_request(error: FieldError, config: SearchConfig) -> FieldError:
    """A sampled job's error as a field of the request: the space's path, or the base's field."""
    for path in config.space:
        if error.field == path or error.field.startswith(f"{path}."):
            return FieldError(
                f"space.{path}", f"no point of the space gives a valid job: {error.message}", error.type
            )
    return FieldError(f"base.{error.field}", error.message, error.type)
