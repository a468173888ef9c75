"""``kjobs worker`` supervising real Celery workers (one per simulated GPU), and its restart limit."""

import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from cli.supervisor import EXIT_GAVE_UP, RestartPolicy, Supervisor
from cli.worker_layout import WorkerProcess
from shared.ops.hardware import FAKE_GPUS_ENV
from shared.ops.registry import WorkerInfo, WorkerRegistry
from shared.redis.connection import connect
from shared.redis.keys import RedisKeys
from shared.settings import Settings
from tests.conftest import delete_prefixed, stop
from tests.helpers import wait_for

pytestmark = pytest.mark.e2e


@pytest.fixture
def own_prefix(settings_env: Settings) -> Iterator[str]:
    """A key prefix of this test's own: its workers' queues and registry meet no other test's."""
    prefix = f"{settings_env.key_prefix}-sup{uuid.uuid4().hex[:6]}"
    yield prefix
    delete_prefixed(connect(settings_env), prefix)


def live_by_name(registry: WorkerRegistry) -> dict[str, WorkerInfo]:
    return {info.name.split("@")[0]: info for info in registry.live()}


def test_one_worker_per_gpu_is_restarted_when_killed_and_all_stop_on_sigterm(
    settings_env: Settings, own_prefix: str, tmp_path: Path
) -> None:
    env = {**os.environ, "KEY_PREFIX": own_prefix, FAKE_GPUS_ENV: "0:NVIDIA H100:81559,1:NVIDIA H100:81559"}
    command = [sys.executable, "-m", "cli.main", "worker", "--gpus", "all"]
    log_path = tmp_path / "supervisor.log"  # the workers' logs too: they inherit its output
    with log_path.open("wb") as log:
        supervisor = subprocess.Popen(command, env=env, stdout=log, stderr=log)
    registry = WorkerRegistry(connect(settings_env), RedisKeys(own_prefix))
    try:
        workers = wait_for(
            lambda: (found := live_by_name(registry)).keys() == {"gpu0", "gpu1"} and found,
            timeout=240,
            what="a worker per GPU",
        )
        for index in (0, 1):
            worker = workers[f"gpu{index}"]
            assert worker.queues == ["gpu"]
            assert psutil.Process(worker.pid).environ()["CUDA_VISIBLE_DEVICES"] == str(index)
            assert psutil.Process(worker.pid).ppid() == supervisor.pid
            # The GPUs are simulated: the backend trains on this machine's CPU, and says so.
            assert worker.device is not None
            assert worker.device.kind == "cpu"
            assert worker.backend == "tensorflow"

        killed = workers["gpu1"].pid
        os.kill(killed, signal.SIGKILL)
        restarted = wait_for(
            lambda: (info := live_by_name(registry).get("gpu1")) and info.pid != killed and info,
            timeout=240,
            what="gpu1 to be restarted",
        )
        assert psutil.Process(restarted.pid).environ()["CUDA_VISIBLE_DEVICES"] == "1"
        assert live_by_name(registry)["gpu0"].pid == workers["gpu0"].pid

        supervisor.send_signal(signal.SIGTERM)
        assert supervisor.wait(timeout=120) == 0
        assert not psutil.pid_exists(restarted.pid)
        assert not psutil.pid_exists(workers["gpu0"].pid)
        assert registry.live() == []  # they left the registry as they stopped
    finally:
        if supervisor.poll() is None:
            stop(supervisor)
    # Rich wraps long log lines: compare with the whitespace collapsed.
    assert "exited with code -9" in " ".join(log_path.read_text().split())


def test_a_worker_that_keeps_crashing_makes_the_supervisor_give_up() -> None:
    crashing = WorkerProcess("crashing", [sys.executable, "-c", "raise SystemExit(3)"])
    policy = RestartPolicy(max_restarts_per_minute=3, backoff_start_seconds=0.05, backoff_max_seconds=0.1)
    assert Supervisor([crashing], policy, stop_grace_seconds=5).run() == EXIT_GAVE_UP


def test_backoff_doubles_up_to_its_cap() -> None:
    policy = RestartPolicy(backoff_start_seconds=1.0, backoff_max_seconds=5.0)
    assert [policy.backoff(n) for n in range(1, 6)] == [1.0, 2.0, 4.0, 5.0, 5.0]
