"""Redis that survives losing its primary, for real: the API, a worker and Celery's broker on
Redis Sentinel (a primary, a replica, three sentinels); the primary is killed mid-job."""

import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.stack import (
    SLOW_SPEC,
    Stack,
    assert_complete,
    stack_of,
    submit,
    wait_for_epoch,
    wait_until_ended,
)
from tests.helpers import tiny_spec, wait_for
from tests.sentinel_cluster import MASTER, sentinel_cluster

pytestmark = pytest.mark.e2e


def submit_through(stack: Stack, spec: dict[str, Any], timeout: float = 90) -> str:
    """Submit as a careful client does while Redis fails over: with an Idempotency-Key, again on a
    503 or a dropped connection, until the job is stored."""
    headers = {**stack.headers, "Idempotency-Key": uuid.uuid4().hex}
    deadline = time.monotonic() + timeout
    while True:
        try:
            answer = httpx.post(f"{stack.url}/v1/jobs", json=spec, headers=headers, timeout=10)
            if answer.status_code == 202:
                job_id: str = answer.json()["id"]
                return job_id
            assert answer.status_code == 503, answer.text
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, "the job was never stored"
        time.sleep(0.5)


def test_a_failover_mid_job_loses_no_job_and_no_epoch(tmp_path: Path, datasets_dir: Path) -> None:
    (tmp_path / "redis").mkdir()
    with sentinel_cluster(tmp_path / "redis") as cluster:
        settings = {"REDIS_URL": cluster.url, "REDIS_SENTINEL_MASTER": MASTER}
        with stack_of(tmp_path, datasets_dir, primary=cluster.primary, **settings) as stack:
            stack.start_worker()
            job_id = submit(stack, SLOW_SPEC)
            wait_for_epoch(stack, job_id, 2)
            cluster.kill_primary()
            during = submit_through(stack, tiny_spec())
            assert cluster.primary_port() == cluster.replica.port, "the replica was promoted"
            for ended, epochs in ((job_id, 8), (during, 2)):
                job = wait_until_ended(stack, ended)
                assert job["status"] == "succeeded", job["error"]
                assert_complete(stack, ended, epochs)
            wait_for(lambda: stack.readiness()["ready"], timeout=30, what="the API ready on the new primary")
