"""The trained model of a job, as a `.keras` file: streamed from the artifact store through the
API, or (``MODEL_DOWNLOAD=redirect``, with an object store) a redirect to a presigned URL."""

from fastapi import APIRouter
from fastapi.responses import FileResponse, RedirectResponse, Response, StreamingResponse

from api.dependencies import JobDep, ServicesDep
from api.problems import CONFLICT_RESPONSE, PROBLEM_RESPONSES
from shared.errors import Conflict
from shared.storage.layout import model_key

router = APIRouter(prefix="/v1/jobs", tags=["jobs"], responses=PROBLEM_RESPONSES)
KERAS = "application/octet-stream"


@router.get(
    "/{job_id}/model",
    operation_id="download_model",
    response_class=StreamingResponse,
    responses={
        200: {"content": {KERAS: {}}, "description": "The model, for keras.models.load_model"},
        307: {"description": "With MODEL_DOWNLOAD=redirect: the model's presigned URL in the object store"},
        **CONFLICT_RESPONSE,
    },
    summary="Download the trained model",
)
def download_model(job: JobDep, services: ServicesDep) -> Response:
    """The saved model (the best epoch's weights when early stopping restored them)."""
    artifacts, key = services.artifacts, model_key(job.id, job.attempt)
    size = artifacts.size(key) if job.has_model else None
    if size is None:
        raise Conflict(f"job {job.id} has no model yet (it is {job.status.value})")
    if services.settings.model_download == "redirect":
        url = artifacts.presigned_url(key, services.settings.model_url_seconds)
        if url is not None:
            return RedirectResponse(url, status_code=307)
    filename = f"{job.id}.keras"
    own = artifacts.local_path(key)
    if own is not None:
        return FileResponse(own, media_type=KERAS, filename=filename)
    headers = {"Content-Length": str(size), "Content-Disposition": f'attachment; filename="{filename}"'}
    return StreamingResponse(artifacts.chunks(key), media_type=KERAS, headers=headers)
