"""The trained model of a job, as a `.keras` file."""

from fastapi import APIRouter
from fastapi.responses import FileResponse

from api.dependencies import JobDep, ServicesDep
from api.problems import CONFLICT_RESPONSE, PROBLEM_RESPONSES
from shared.artifacts import model_path
from shared.errors import Conflict

router = APIRouter(prefix="/v1/jobs", tags=["jobs"], responses=PROBLEM_RESPONSES)


@router.get(
    "/{job_id}/model",
    operation_id="download_model",
    response_class=FileResponse,
    responses={
        200: {
            "content": {"application/octet-stream": {}},
            "description": "The model, for keras.models.load_model",
        },
        **CONFLICT_RESPONSE,
    },
    summary="Download the trained model",
)
def download_model(job: JobDep, services: ServicesDep) -> FileResponse:
    """The saved model (the best epoch's weights when early stopping restored them)."""
    path = model_path(services.settings.artifacts_dir, job.id, job.attempt)
    if not job.has_model or not path.is_file():
        raise Conflict(f"job {job.id} has no model yet (it is {job.status.value})")
    return FileResponse(path, media_type="application/octet-stream", filename=f"{job.id}.keras")
