"""Several workers sharing one (simulated) GPU, each with its share of the memory
(``GPU_MEMORY_MB``, as ``kjobs worker --slots-per-gpu`` sets it): two small jobs run at once on
two slots; a job goes only to a slot with the memory it asks for, waits for one, or is a 422
when no slot has it. The workers train on the CPU here: what is tested is where jobs go."""

import httpx

from tests.e2e.stack import SLOW_SPEC, Stack, job, submit, wait_until_ended
from tests.helpers import wait_for


def on_gpu(memory_mb: int) -> dict[str, object]:
    return {**SLOW_SPEC, "resources": {"queue": "gpu", "gpu_memory_mb": memory_mb}}


def running_on(stack: Stack, job_id: str) -> str:
    """The worker the job runs on, once it runs."""
    found = wait_for(lambda: (record := job(stack, job_id))["status"] == "running" and record, timeout=180)
    return str(found["worker"]["name"])


def test_slots_take_jobs_by_the_memory_they_ask_for(stack: Stack) -> None:
    for memory in ("4000", "4000", "8000"):
        stack.spawn_worker(queues="gpu", GPU_MEMORY_MB=memory)
    small, large = stack.names[:2], stack.names[2]
    wait_for(lambda: stack.readiness()["workers"].get("gpu") == 3, timeout=180, what="three gpu slots")

    refused = httpx.post(f"{stack.url}/v1/jobs", json=on_gpu(9000), headers=stack.headers, timeout=10)
    assert refused.status_code == 422, refused.text
    (error,) = refused.json()["errors"]
    assert error["field"] == "resources.gpu_memory_mb"
    assert (
        error["message"] == "no worker of queue gpu has 9000 MiB of GPU memory: the largest slot has 8000 MiB"
    )

    first, second = submit(stack, on_gpu(3000)), submit(stack, on_gpu(3000))
    # The least memory that fits: the two small slots, at once, the large one left free.
    assert sorted([running_on(stack, first), running_on(stack, second)]) == sorted(small)
    assert {job(stack, first)["status"], job(stack, second)["status"]} == {"running"}
    big = submit(stack, on_gpu(6000))
    assert running_on(stack, big) == large

    for job_id in (first, second):
        httpx.post(f"{stack.url}/v1/jobs/{job_id}/cancel", headers=stack.headers, timeout=10)
        wait_until_ended(stack, job_id)
    waiting = submit(stack, on_gpu(6000))
    place = wait_for(lambda: job(stack, waiting)["queue_place"], timeout=10)
    assert place["state"] == "waiting", place  # two slots are free, neither with 6000 MiB
    assert job(stack, waiting)["status"] == "queued"
    httpx.post(f"{stack.url}/v1/jobs/{big}/cancel", headers=stack.headers, timeout=10)
    assert running_on(stack, waiting) == large
