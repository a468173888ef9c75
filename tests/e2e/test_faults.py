"""Faults, for real: killed workers, a stopped and restarted Redis, stuck cancellations, on a
stack of the tests' own (``tests.e2e.stack``)."""

import os
import signal
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import psutil
import pytest
from redis import Redis

from shared.auth.keys import KeyStore
from shared.jobs.dispatch import Dispatch
from shared.jobs.store import JobStore
from shared.ops.registry import WorkerInfo, WorkerRegistry
from shared.queue import create_celery_app, queue_depths
from shared.redis.keys import RedisKeys
from shared.scheduling.dispatcher import Dispatcher
from shared.settings import Settings
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
from tests.plain_keras import predict_with_plain_keras

pytestmark = pytest.mark.e2e


def test_a_killed_worker_s_job_resumes_on_another_from_its_last_epoch(stack: Stack) -> None:
    worker = stack.start_worker()
    baseline = wait_until_ended(stack, submit(stack, SLOW_SPEC))
    job_id = submit(stack, SLOW_SPEC)
    wait_for_epoch(stack, job_id, 2)
    os.kill(worker.pid, signal.SIGKILL)
    worker.wait()
    stack.start_worker()
    ended = wait_until_ended(stack, job_id)
    assert (ended["status"], ended["attempt"]) == ("succeeded", 2), ended
    assert_complete(stack, job_id, 8)
    attempts = [attempt for _, attempt in epochs(stack, job_id)]
    assert attempts[:2] == [1, 1]
    assert attempts[-1] == 2
    reasons = [t["reason"] for t in ended["transitions"]]
    assert any("stopped renewing its lease" in (reason or "") for reason in reasons), reasons
    assert ended["result"]["test_accuracy"] == pytest.approx(baseline["result"]["test_accuracy"], abs=0.1)


def test_a_killed_pool_child_s_job_resumes(stack: Stack) -> None:
    parent = stack.start_worker(pool="prefork")
    job_id = submit(stack, SLOW_SPEC)
    wait_for_epoch(stack, job_id, 2)
    (child,) = psutil.Process(parent.pid).children()
    child.kill()
    ended = wait_until_ended(stack, job_id)
    assert (ended["status"], ended["attempt"]) == ("succeeded", 2), ended
    assert_complete(stack, job_id, 8)
    assert parent.poll() is None, "the pool's parent survives and replaces its child"


def test_the_api_answers_503_fast_while_redis_is_down_and_jobs_survive_it(stack: Stack) -> None:
    stack.start_worker()
    job_id = submit(stack, SLOW_SPEC)
    wait_for_epoch(stack, job_id, 1)
    stack.redis.stop()
    requests = [
        ("GET", f"/v1/jobs/{job_id}", stack.headers),
        ("GET", f"/v1/jobs/{job_id}/metrics?after_epoch=0", stack.headers),
        ("GET", "/v1/jobs", stack.headers),
        ("POST", "/v1/jobs", stack.headers),
        ("GET", "/readyz", stack.operator),
    ]
    for method, path, headers in requests:
        started = time.monotonic()
        response = httpx.request(method, f"{stack.url}{path}", json=tiny_spec(), timeout=10, headers=headers)
        assert response.status_code == 503, (path, response.text)
        assert time.monotonic() - started < 2.5, path
    assert httpx.get(f"{stack.url}/healthz").status_code == 200
    time.sleep(3)  # longer than a lease: the job's lease lapses while Redis is away
    stack.redis.start()
    ended = wait_until_ended(stack, job_id)
    assert ended["status"] == "succeeded", ended
    assert_complete(stack, job_id, 8)
    assert stack.readiness()["ready"] is True


def test_a_redis_restart_mid_job_loses_no_record(stack: Stack) -> None:
    stack.start_worker()
    job_id = submit(stack, SLOW_SPEC)
    wait_for_epoch(stack, job_id, 2)
    stack.redis.stop()
    stack.redis.start()
    ended = wait_until_ended(stack, job_id)
    assert ended["status"] == "succeeded", ended
    assert_complete(stack, job_id, 8)


def test_the_runtime_limit_ends_the_job_with_its_best_model(stack: Stack) -> None:
    stack.start_worker()
    spec = tiny_spec(dataset={"train_limit": 1200}, training={"epochs": 500, "batch_size": 4})
    spec["resources"] = {"max_runtime_seconds": 3}
    ended = wait_until_ended(stack, submit(stack, spec))
    assert (ended["status"], ended["stop_reason"]) == ("succeeded", "max_runtime")
    assert 1 <= ended["result"]["stopped_epoch"] < 500
    assert ended["has_model"] is True
    assert httpx.get(f"{stack.url}/v1/jobs/{ended['id']}/model", headers=stack.headers).status_code == 200


# With augmentation, the checkpoint's model holds the worker's own augmentation layer: the job's
# model, made from that checkpoint, must still load where only Keras is installed.
@pytest.mark.parametrize(
    "regularization",
    [{}, {"augmentation": {"rotation": 0.05, "translation": 0.1, "zoom": 0.1, "horizontal_flip": True}}],
    ids=["plain", "augmented"],
)
def test_a_cancel_that_is_not_honoured_in_time_terminates_the_worker(
    stack: Stack, tmp_path: Path, regularization: dict[str, Any]
) -> None:
    # This worker looks for cancel requests only once an hour: the grace period must end the job.
    worker = stack.start_worker(CANCEL_CHECK_SECONDS="3600")
    spec = SLOW_SPEC | {"training": {"epochs": 100, "batch_size": 4}, "regularization": regularization}
    job_id = submit(stack, spec)
    wait_for_epoch(stack, job_id, 1)
    response = httpx.post(f"{stack.url}/v1/jobs/{job_id}/cancel", headers=stack.headers)
    assert (response.status_code, response.json()["status"]) == (202, "cancelling")
    ended = wait_until_ended(stack, job_id, timeout=30)
    assert (ended["status"], ended["stop_reason"]) == ("cancelled", "cancelled")
    assert "not honoured" in ended["transitions"][-1]["reason"]
    assert worker.wait(timeout=30) == 70
    # Started again, as Celery's pool or a service manager would: it follows the ending up, which
    # makes the last checkpoint the job's model.
    stack.start_worker()
    wait_for(lambda: job(stack, job_id)["has_model"], timeout=60, what="the checkpoint to become the model")
    model = httpx.get(f"{stack.url}/v1/jobs/{job_id}/model", headers=stack.headers)
    assert model.status_code == 200
    (tmp_path / "model.keras").write_bytes(model.content)
    predictions, layers = predict_with_plain_keras(tmp_path / "model.keras", np.zeros((2, 28, 28), np.uint8))
    assert predictions.shape == (2, 10)
    assert "RandomAffine" not in layers


def test_a_job_gone_with_a_redis_restarted_without_persistence_stops_and_its_files_go(
    stack: Stack,
) -> None:
    worker = stack.start_worker()
    job_id = submit(stack, SLOW_SPEC)
    wait_for_epoch(stack, job_id, 2)
    files = Path(stack.env["ARTIFACTS_DIR"]) / job_id
    assert files.is_dir()
    stack.redis.append_only = False  # started again without its append-only file: empty
    stack.redis.stop()
    stack.redis.start()
    wait_for(lambda: not files.exists(), timeout=60, what="the vanished job's files to go")
    assert worker.poll() is None, "the worker lives on"
    keys = KeyStore(Redis(port=stack.redis.port, decode_responses=True), RedisKeys(stack.env["KEY_PREFIX"]))
    stack.headers = {"Authorization": f"Bearer {keys.create('faults')[1]}"}
    wait_for(stack.cpu_workers, timeout=60)
    next_job = submit(stack, tiny_spec())
    assert wait_until_ended(stack, next_job)["status"] == "succeeded"
    logs = "".join(path.read_text(errors="replace") for path in stack.folder.glob("fault-*.log"))
    assert f"job {job_id}: gone from Redis while it trained" in logs


def test_jobs_whose_messages_were_lost_are_sent_again_and_run(stack: Stack) -> None:
    redis = Redis(port=stack.redis.port, decode_responses=True)
    keys = RedisKeys(stack.env["KEY_PREFIX"])
    lost = submit(stack, tiny_spec())
    retried = submit(stack, tiny_spec(), idempotency_key="lost-then-retried")
    # A dispatcher (as a worker runs one) releases both to two slots of the cpu queue...
    settings = Settings(redis_url=stack.redis.url, key_prefix=keys.prefix)
    deadline = float(stack.env["DISPATCH_DEADLINE_SECONDS"])
    store, celery = JobStore(redis, keys, dispatch_seconds=deadline), create_celery_app(settings)
    registry = WorkerRegistry(redis, keys)
    for name in ("first@gone", "second@gone"):
        registry.beat(WorkerInfo(name=name, queues=["cpu"], pid=0, started_at=0, seen_at=0), ttl_seconds=5)
    assert sorted(Dispatcher(Dispatch(store, celery), registry, settings).dispatch_once()) == sorted(
        [lost, retried]
    )
    celery.close()
    assert queue_depths(redis, keys)["cpu"] == 2
    # ...but Redis kept the release and not the pushes after it (or the dispatcher died between).
    redis.delete(f"{keys.broker_prefix()}cpu")
    assert submit(stack, tiny_spec(), idempotency_key="lost-then-retried") == retried
    assert queue_depths(redis, keys)["cpu"] == 1, "the client's retry sent the released job again"
    stack.start_worker()
    for job_id in (lost, retried):
        assert wait_until_ended(stack, job_id, timeout=60)["status"] == "succeeded"
        assert_complete(stack, job_id, 2)
