"""Structured logs: JSON lines, with the job and its attempt on every line about a job."""

import json
import logging
from pathlib import Path
from typing import Any

import httpx
import pytest

from shared.logs import JsonFormatter, job_context, job_fields, set_attempt
from tests.helpers import tiny_spec, wait_for


def formatted(message: str, **extra: Any) -> dict[str, Any]:
    record = logging.makeLogRecord({"name": "kjobs.test", "levelname": "INFO", "msg": message, **extra})
    entry: dict[str, Any] = json.loads(JsonFormatter().format(record))
    return entry


def test_a_line_inside_a_job_context_names_the_job_and_attempt() -> None:
    with job_context("a" * 24):
        assert (formatted("claimed")["job_id"], formatted("claimed")["attempt"]) == ("a" * 24, None)
        set_attempt(2)
        entry = formatted("epoch %d", args=(3,))
    assert (entry["message"], entry["job_id"], entry["attempt"], entry["level"]) == (
        "epoch 3",
        "a" * 24,
        2,
        "info",
    )
    assert "job_id" not in formatted("outside")


def test_extra_fields_and_celery_task_arguments_name_the_job() -> None:
    assert formatted("renewal failed", **job_fields("b" * 24, 1))["attempt"] == 1
    received = formatted("Task received", data={"id": "t1", "args": f"['{'c' * 24}']"})
    assert received["job_id"] == "c" * 24


@pytest.mark.e2e
def test_the_worker_logs_json_lines_naming_the_job_and_attempt(
    client: httpx.Client, worker: str, worker_log: Path
) -> None:
    job = client.post("/v1/jobs", json=tiny_spec()).json()
    wait_for(lambda: client.get(f"/v1/jobs/{job['id']}").json()["status"] == "succeeded", 120, what="the job")

    def lines_about_the_job() -> list[dict[str, Any]]:
        entries = [json.loads(line) for line in worker_log.read_text().splitlines() if line.startswith("{")]
        return [entry for entry in entries if job["id"] in json.dumps(entry)]

    # The task's outcome line follows the job's last write: wait for it.
    about = wait_for(
        lambda: (
            (found := lines_about_the_job()) and any("succeeded" in e["message"] for e in found) and found
        ),
        30,
        what="the task's outcome line",
    )
    assert all(entry["job_id"] == job["id"] for entry in about), about
    assert any(entry.get("attempt") == 1 for entry in about)
    assert all(
        entry["attempt"] == 1
        for entry in about
        if "attempt" in entry and entry["logger"].startswith("worker")
    )
