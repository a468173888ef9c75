"""The demo job of ``kjobs up``: submit it, follow its epochs, and show curl lines for the API."""

import json
import time
from collections.abc import Callable
from typing import Any

import httpx
from rich.console import Console

from api.schemas import JobView, MetricsPage
from shared.models.jobs import EpochRecord, JobStatus

POLL_SECONDS = 0.5
REQUEST_TIMEOUT_SECONDS = 10.0
AUTH_HEADER = '-H "Authorization: Bearer $KJOBS_API_KEY"'


class DemoError(RuntimeError):
    """The API refused or failed a request of the demo."""


def demo_submission(epochs: int, train_limit: int) -> dict[str, Any]:
    """The demo's job: the dropout preset on a slice of MNIST."""
    return {
        "preset": "dropout",
        "dataset": {"name": "mnist", "train_limit": train_limit},
        "training": {"epochs": epochs},
    }


def run_demo(
    api_url: str,
    body: dict[str, Any],
    console: Console,
    check: Callable[[], None],
    api_key: str | None = None,
) -> JobView:
    """Submit ``body``, print each epoch as it is recorded, and return the finished job; every
    request carries ``api_key``, if any."""
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    with httpx.Client(base_url=api_url, headers=headers, timeout=REQUEST_TIMEOUT_SECONDS) as client:
        job = JobView.model_validate_json(_ok(client.post("/v1/jobs", json=body)).text)
        console.print(f"Submitted demo job [bold]{job.id}[/] ({job.status.value})")
        follow(client, job.id, console, check)
        job = JobView.model_validate_json(_ok(client.get(f"/v1/jobs/{job.id}")).text)
    show_outcome(job, console)
    return job


def follow(client: httpx.Client, job_id: str, console: Console, check: Callable[[], None]) -> None:
    """Poll the job's metrics, printing new epochs and status changes, until the job has ended."""
    after_epoch, status = 0, JobStatus.QUEUED
    while True:
        response = _ok(client.get(f"/v1/jobs/{job_id}/metrics", params={"after_epoch": after_epoch}))
        page = MetricsPage.model_validate_json(response.text)
        for record in page.records:
            console.print(epoch_line(record), highlight=False, soft_wrap=True)
        if page.status != status:
            status = page.status
            console.print(f"  status: {status.value}")
        after_epoch = page.last_epoch
        if page.has_more:
            continue
        if page.status.is_terminal():
            return
        check()
        time.sleep(POLL_SECONDS)


def epoch_line(record: EpochRecord) -> str:
    """One epoch record as a line of text."""
    return (
        f"  epoch {record.epoch:>3}  loss {record.loss:.4f}  accuracy {record.accuracy:.4f}  "
        f"val_loss {_number(record.val_loss)}  val_accuracy {_number(record.val_accuracy)}  "
        f"{record.epoch_seconds:.1f} s"
    )


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def show_outcome(job: JobView, console: Console) -> None:
    """The job's final status and its test accuracy, or its error."""
    if job.result is not None:
        result = job.result
        console.print(
            f"Demo job [bold]{job.status.value}[/]: test accuracy {result.test_accuracy:.4f}, "
            f"test loss {result.test_loss:.4f} (stopped at epoch {result.stopped_epoch})"
        )
    elif job.error is not None:
        console.print(f"Demo job [bold red]{job.status.value}[/]: {job.error.type}: {job.error.message}")
    else:
        console.print(f"Demo job [bold]{job.status.value}[/]")


def curl_examples(api_url: str, body: dict[str, Any], job_id: str, authenticated: bool = False) -> list[str]:
    """Ready-to-paste curl lines for the running API: submit, metrics, get, cancel, model; with
    ``authenticated``, each sends the key in ``$KJOBS_API_KEY``."""
    job = f"{api_url}/v1/jobs/{job_id}"
    curl = f"curl -s {AUTH_HEADER}" if authenticated else "curl -s"
    return [
        f"{curl} -X POST {api_url}/v1/jobs -H 'Content-Type: application/json' -d '{json.dumps(body)}'",
        f'{curl} "{job}/metrics?after_epoch=0"',
        f'{curl} "{job}"',
        f'{curl} -X POST "{job}/cancel"',
        f'{curl} -o {job_id}.keras "{job}/model"',
    ]


def _ok(response: httpx.Response) -> httpx.Response:
    if response.is_success:
        return response
    request = response.request
    raise DemoError(f"{request.method} {request.url.path} answered {response.status_code}: {response.text}")
