"""The scheduler with real workers: a tenant's first job does not wait behind another tenant's
backlog, a high-priority job preempts a low one within an epoch (which resumes and ends with
every epoch once), and losing the dispatching process loses no job and sends none twice."""

import os
import signal
from datetime import datetime
from typing import Any

import httpx
from redis import Redis

from shared.auth.keys import KeyStore
from shared.redis.keys import RedisKeys
from tests.e2e.stack import (
    SLOW_SPEC,
    Stack,
    assert_complete,
    epochs,
    job,
    submit,
    wait_for_epoch,
    wait_until_ended,
)
from tests.helpers import tiny_spec, wait_for


def started_at(record: dict[str, Any]) -> datetime | None:
    """When the job's first attempt started."""
    starts = [t["at"] for t in record["transitions"] if t["status"] == "running"]
    return datetime.fromisoformat(starts[0]) if starts else None


def other_tenant(stack: Stack, tenant: str) -> dict[str, str]:
    keys = KeyStore(Redis(port=stack.redis.port, decode_responses=True), RedisKeys(stack.env["KEY_PREFIX"]))
    return {"Authorization": f"Bearer {keys.create(tenant)[1]}"}


def test_a_tenant_s_first_job_starts_second_not_behind_another_s_backlog(stack: Stack) -> None:
    stack.start_worker()
    backlog = [submit(stack, tiny_spec()) for _ in range(10)]
    wait_for(lambda: job(stack, backlog[0])["status"] != "queued", timeout=120, what="the first job to start")
    newcomer_headers = other_tenant(stack, "newcomer")
    answer = httpx.post(f"{stack.url}/v1/jobs", json=tiny_spec(), headers=newcomer_headers, timeout=10)
    newcomer = answer.json()["id"]
    place = httpx.get(f"{stack.url}/v1/jobs/{newcomer}", headers=newcomer_headers, timeout=10).json()
    if place["status"] == "queued" and place["queue_place"]["state"] == "waiting":
        assert place["queue_place"]["position"] == 1, place["queue_place"]
    queue = httpx.get(f"{stack.url}/v1/queue", headers=stack.headers, timeout=10).json()
    (cpu,) = [q for q in queue["queues"] if q["queue"] == "cpu"]
    assert cpu["slots"] == 1
    assert newcomer not in [w["id"] for w in cpu["waiting"]], "a tenant sees its own jobs only"
    wait_for(lambda: job(stack, backlog[2])["status"] != "queued", timeout=120, what="the third job to start")
    records = [job(stack, job_id) for job_id in backlog[:3]]
    newcomer_started = started_at(
        httpx.get(f"{stack.url}/v1/jobs/{newcomer}", headers=newcomer_headers).json()
    )
    assert newcomer_started is not None
    assert started_at(records[0]) < newcomer_started < started_at(records[1])  # type: ignore[operator]


def test_a_high_priority_job_preempts_a_low_one_which_resumes_with_every_epoch_once(stack: Stack) -> None:
    stack.start_worker()
    low = submit(stack, {**SLOW_SPEC, "resources": {"priority": "low"}})
    wait_for_epoch(stack, low, 2)
    high = submit(stack, tiny_spec(resources={"priority": "high"}))
    ended_high = wait_until_ended(stack, high, timeout=120)
    assert ended_high["status"] == "succeeded"
    ended_low = wait_until_ended(stack, low, timeout=240)
    assert ended_low["status"] == "succeeded"
    assert_complete(stack, low, SLOW_SPEC["training"]["epochs"])
    reasons = [t["reason"] for t in ended_low["transitions"]]
    preempted = [r for r in reasons if r.startswith(f"preempted by job {high}")]
    assert len(preempted) == 1, reasons
    # Within one epoch of the request: the epoch it was in when asked, and the next at most.
    stopped_after = int(preempted[0].rsplit(" ", 1)[1])
    assert stopped_after <= 4
    attempts = {attempt for _, attempt in epochs(stack, low)}
    assert attempts == {1, 2}
    assert started_at(ended_high) is not None


def test_losing_the_dispatching_process_loses_no_job_and_sends_none_twice(stack: Stack) -> None:
    redis = Redis(port=stack.redis.port, decode_responses=True)
    lease = RedisKeys(stack.env["KEY_PREFIX"]).dispatcher()
    idle = stack.spawn_worker(queues="gpu")  # takes the lease first, and no job
    wait_for(
        lambda: str(redis.get(lease) or "").split(":")[1:2] == [str(idle.pid)], timeout=120, what="the lease"
    )
    stack.start_worker()
    jobs = [submit(stack, tiny_spec(training={"epochs": 2})) for _ in range(4)]
    wait_for(lambda: job(stack, jobs[0])["status"] != "queued", timeout=120, what="the first job to start")
    os.kill(idle.pid, signal.SIGKILL)
    idle.wait()
    for job_id in jobs:
        ended = wait_until_ended(stack, job_id, timeout=120)
        assert [t["status"] for t in ended["transitions"]] == ["queued", "running", "succeeded"]
    holder = str(redis.get(lease) or "")
    assert holder.split(":")[1] == str(stack.workers[-1].pid), "the other worker took the lease over"
    received = stack.worker_log(stack.names[-1]).read_text().count("] received")
    assert received == len(jobs), "each job's message sent once"
