"""A new study: every variant checked as a submission, then the study and all its jobs stored
at once, within the tenant's quota, and as many sent as its cap allows."""

from shared.datasets.store import DatasetStore
from shared.errors import SpecInvalid
from shared.jobs.submission import check_slot_memory, check_trainable, metric_errors
from shared.models.jobs import JobRecord, StudyMembership, new_job_id, utc_now
from shared.models.network import NetworkSummary
from shared.models.studies import StudyJob, StudyRecord, StudyRequest
from shared.ops.registry import WorkerRegistry
from shared.settings import Settings
from shared.studies.expansion import expand
from shared.studies.store import StudyStore


def create_study(
    request: StudyRequest, tenant: str, studies: StudyStore, datasets: DatasetStore, settings: Settings
) -> StudyRecord:
    """Create the study ``request`` asks for; ``SpecInvalid`` naming every bad variant, or
    ``TooManyRequests`` when its jobs would take the tenant past its quota (nothing is stored)."""
    variants = expand(request, settings)
    workers = WorkerRegistry(studies.redis, studies.keys)
    plans = []
    for _, job in variants:
        plan = check_trainable(job.spec, tenant, datasets, settings)
        check_slot_memory(job.spec, job.queue, workers)
        errors = metric_errors(request.objective.metric, plan.data.task, "objective.metric")
        if errors:
            raise SpecInvalid(errors)
        plans.append(plan)
    study_id = new_job_id()
    jobs = [
        JobRecord.new(
            new_job_id(),
            tenant,
            job.spec,
            job.queue,
            job.preset,
            StudyMembership(id=study_id, variant=name),
            NetworkSummary.of(plan),
        )
        for (name, job), plan in zip(variants, plans, strict=True)
    ]
    study = StudyRecord(
        id=study_id,
        tenant=tenant,
        name=request.name,
        objective=request.objective,
        max_parallel=request.max_parallel,
        created_at=utc_now(),
        jobs=[StudyJob(variant=name, job_id=job.id) for (name, _), job in zip(variants, jobs, strict=True)],
    )
    studies.create(study, jobs, settings.max_active_jobs_per_tenant)
    return study
