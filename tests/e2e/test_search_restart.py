"""A search outlives its processes, for real: the API and the worker are killed in the middle of
a search and started again; it resumes where it was, its trials each asked once."""

import os
import signal
from typing import Any

import httpx
import pytest

from tests.e2e.stack import Stack
from tests.helpers import tiny_spec, wait_for

pytestmark = pytest.mark.e2e


def study(stack: Stack, study_id: str) -> dict[str, Any]:
    found: dict[str, Any] = httpx.get(
        f"{stack.url}/v1/studies/{study_id}", headers=stack.headers, timeout=30
    ).json()
    return found


def test_a_search_resumes_after_its_api_and_worker_are_killed(stack: Stack) -> None:
    worker = stack.start_worker()
    body = {
        "base": tiny_spec(dataset={"train_limit": 600}, training={"epochs": 3, "batch_size": 16}),
        "space": {"training.learning_rate": {"float": {"low": 1e-3, "high": 3e-2, "log": True}}},
        "sampler": {"type": "tpe", "seed": 5, "startup_trials": 2},
        "pruner": "none",
        "max_trials": 4,
        "max_parallel": 1,
    }
    answer = httpx.post(f"{stack.url}/v1/studies", json=body, headers=stack.headers, timeout=30)
    assert answer.status_code == 202, answer.text
    study_id = answer.json()["id"]
    wait_for(lambda: len(study(stack, study_id)["jobs"]) >= 2, timeout=180, what="the second trial")
    stack.kill_api()
    os.kill(worker.pid, signal.SIGKILL)
    worker.wait()
    stack.start_api()
    stack.start_worker()
    ended = wait_for(lambda: (s := study(stack, study_id))["status"] == "completed" and s, timeout=300)
    search = ended["search"]
    assert (search["end_reason"], search["trials_started"]) == ("max_trials", 4)
    assert [t["number"] for t in search["trials"]] == [0, 1, 2, 3], "each trial asked once"
    assert {t["state"] for t in search["trials"]} == {"complete"}
    assert len({t["job_id"] for t in search["trials"]}) == 4
    rates = [t["params"]["training.learning_rate"] for t in search["trials"]]
    assert len(set(rates)) == 4, "a process that started again drew no point an earlier one drew"
