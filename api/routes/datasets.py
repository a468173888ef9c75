"""Bring your own dataset: upload, list, describe, delete."""

from typing import Annotated

from fastapi import APIRouter, File, Form, Response, UploadFile

from api.dependencies import JobIdPath, ServicesDep, TenantDep, check_job_id
from api.problems import CONFLICT_RESPONSE, PROBLEM_RESPONSES, UPLOAD_INVALID_RESPONSE
from shared.datasets.formats import read_upload
from shared.models.datasets import DatasetInfo

router = APIRouter(prefix="/v1/datasets", tags=["datasets"], responses=PROBLEM_RESPONSES)


@router.post(
    "",
    operation_id="upload_dataset",
    status_code=201,
    response_model=DatasetInfo,
    responses=UPLOAD_INVALID_RESPONSE,
    summary="Upload a dataset",
)
def upload_dataset(
    file: Annotated[
        list[UploadFile],
        File(
            min_length=1,
            description="An .npz (x_train, y_train; optional x_test, y_test), the four IDX files, a zip "
            "of IDX files, of train/<class>/ image folders (optional test/<class>/), or of train.csv "
            "(filename,label) beside PNG images (optional test.csv), or a CSV table of numeric features "
            "and a label column (one file, or train.csv and test.csv).",
        ),
    ],
    response: Response,
    services: ServicesDep,
    tenant: TenantDep,
    name: Annotated[str | None, Form(max_length=100, description="A label for people.")] = None,
    label_column: Annotated[
        str | None, Form(max_length=200, description="A CSV table's column of labels (classes or targets).")
    ] = None,
    convert: Annotated[
        bool,
        Form(
            description="Resize images to the first image's size, make colour images among grayscale "
            "ones grayscale, and scale float pixels in [0, 1] to 0-255."
        ),
    ] = False,
) -> DatasetInfo:
    """Check every image and label, then store the arrays where all workers read them."""
    services.datasets.check_quota(tenant, 0)  # before anything is read
    files = {upload.filename or f"upload-{index}": upload.file.read() for index, upload in enumerate(file)}
    arrays = read_upload(files, convert, services.settings.max_expanded_bytes, label_column)
    info = services.datasets.save(tenant, name, arrays)
    response.headers["Location"] = f"/v1/datasets/{info.id}"
    return info


@router.get("", operation_id="list_datasets", response_model=list[DatasetInfo], summary="List datasets")
def list_datasets(services: ServicesDep, tenant: TenantDep) -> list[DatasetInfo]:
    """The caller's uploaded datasets, newest first."""
    return services.datasets.for_tenant(tenant)


@router.get(
    "/{dataset_id}", operation_id="get_dataset", response_model=DatasetInfo, summary="Describe a dataset"
)
def get_dataset(dataset_id: JobIdPath, services: ServicesDep, tenant: TenantDep) -> DatasetInfo:
    """Sample counts, classes and shape."""
    check_job_id(dataset_id)
    return services.datasets.get(dataset_id, tenant)


@router.delete(
    "/{dataset_id}",
    operation_id="delete_dataset",
    status_code=204,
    responses=CONFLICT_RESPONSE,
    summary="Delete a dataset",
)
def delete_dataset(dataset_id: JobIdPath, services: ServicesDep, tenant: TenantDep) -> Response:
    """Delete it; refused (409) while a queued or running job uses it."""
    check_job_id(dataset_id)
    services.datasets.delete(dataset_id, tenant)
    return Response(status_code=204)
