"""The worker layout ``kjobs worker`` plans, from a simulated GPU list (``KJOBS_FAKE_GPUS``)."""

import os
import subprocess
import sys

import pytest

from cli.worker_layout import LayoutError, plan_workers
from shared.models.devices import Gpu
from shared.ops.hardware import FAKE_GPUS_ENV, GpuListError, list_gpus, parse_nvidia_smi

TWO_H100 = "0:NVIDIA H100 80GB HBM3:81559,1:NVIDIA H100 80GB HBM3:81559"


def option(argv: list[str], name: str) -> str:
    return argv[argv.index(name) + 1]


def dry_run(*args: str, fake_gpus: str | None = TWO_H100) -> subprocess.CompletedProcess[str]:
    """``kjobs worker ARGS --dry-run`` on a machine with ``fake_gpus``."""
    env = {k: v for k, v in os.environ.items() if k != FAKE_GPUS_ENV}
    if fake_gpus is not None:
        env[FAKE_GPUS_ENV] = fake_gpus
    command = [sys.executable, "-m", "cli.main", "worker", *args, "--dry-run"]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=120, check=False)


def test_fake_gpus_are_listed_in_place_of_nvidia_smi() -> None:
    gpus = list_gpus({FAKE_GPUS_ENV: TWO_H100})
    assert gpus == [
        Gpu(index=0, name="NVIDIA H100 80GB HBM3", memory_bytes=81559 * 2**20),
        Gpu(index=1, name="NVIDIA H100 80GB HBM3", memory_bytes=81559 * 2**20),
    ]
    assert list_gpus({FAKE_GPUS_ENV: ""}) == []


def test_a_malformed_fake_gpu_list_is_refused() -> None:
    with pytest.raises(GpuListError, match="index:name:MiB"):
        list_gpus({FAKE_GPUS_ENV: "0:H100"})


def test_nvidia_smi_lines_are_parsed_even_with_commas_in_a_name() -> None:
    text = "0, NVIDIA A100-SXM4-80GB, 81920\n1, Tesla V100, PCIe, 16384\n"
    assert parse_nvidia_smi(text) == [
        Gpu(index=0, name="NVIDIA A100-SXM4-80GB", memory_bytes=81920 * 2**20),
        Gpu(index=1, name="Tesla V100, PCIe", memory_bytes=16384 * 2**20),
    ]


def test_all_gpus_get_one_pinned_solo_worker_each_on_the_gpu_queue() -> None:
    gpus = list_gpus({FAKE_GPUS_ENV: TWO_H100})
    plan = plan_workers("all", None, gpus)
    assert [p.env for p in plan] == [{"CUDA_VISIBLE_DEVICES": "0"}, {"CUDA_VISIBLE_DEVICES": "1"}]
    assert [option(p.argv, "--hostname") for p in plan] == ["gpu0@%h", "gpu1@%h"]
    assert [option(p.argv, "-Q") for p in plan] == ["gpu", "gpu"]
    assert all({"--pool=solo", "--concurrency=1"} <= set(p.argv) for p in plan)
    assert plan[0].argv[:6] == [sys.executable, "-m", "celery", "-A", "worker.celery_app:app", "worker"]


def test_slots_per_gpu_share_each_gpu_s_memory_out() -> None:
    gpus = list_gpus({FAKE_GPUS_ENV: "0:Small:8000,1:Large:16000"})
    plan = plan_workers("all", None, gpus, slots_per_gpu=2)
    assert [option(p.argv, "--hostname") for p in plan] == [
        "gpu0-0@%h",
        "gpu0-1@%h",
        "gpu1-0@%h",
        "gpu1-1@%h",
    ]
    assert [p.env["CUDA_VISIBLE_DEVICES"] for p in plan] == ["0", "0", "1", "1"]
    # 90% of each GPU shared out: the rest is each process's CUDA context.
    assert [p.env["GPU_MEMORY_MB"] for p in plan] == ["3600", "3600", "7200", "7200"]
    assert {p.env["XLA_PYTHON_CLIENT_MEM_FRACTION"] for p in plan} == {"0.4500"}
    with pytest.raises(LayoutError, match="--slots-per-gpu shares GPUs: give --gpus too"):
        plan_workers(None, None, gpus, slots_per_gpu=2)


def test_a_gpu_list_picks_those_gpus_only() -> None:
    gpus = list_gpus({FAKE_GPUS_ENV: "0:A:1000,1:B:1000,2:C:1000"})
    plan = plan_workers("2,0", None, gpus)
    assert [p.env["CUDA_VISIBLE_DEVICES"] for p in plan] == ["2", "0"]
    assert [p.gpu.name if p.gpu else None for p in plan] == ["C", "A"]


def test_without_gpus_one_cpu_worker_that_sees_none() -> None:
    gpus = list_gpus({FAKE_GPUS_ENV: TWO_H100})
    (default,) = plan_workers(None, None, gpus)
    assert default.env == {"CUDA_VISIBLE_DEVICES": ""}
    assert option(default.argv, "-Q") == "cpu"
    assert option(default.argv, "--hostname") == "cpu@%h"
    (both,) = plan_workers("all", "cpu,gpu", [])
    assert option(both.argv, "-Q") == "cpu,gpu"


@pytest.mark.parametrize(
    ("gpus", "queues", "message"),
    [
        ("0,5", None, "no GPU 5"),
        ("first", None, "not 'first'"),
        ("all", "cpu", "gpu queue only"),
        (None, "cpu,tpu", "unknown queues: tpu"),
    ],
)
def test_impossible_layouts_are_refused(gpus: str | None, queues: str | None, message: str) -> None:
    with pytest.raises(LayoutError, match=message):
        plan_workers(gpus, queues, list_gpus({FAKE_GPUS_ENV: TWO_H100}))


def test_the_command_prints_its_plan() -> None:
    done = dry_run("--gpus", "all")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("gpu0 on GPU 0 (NVIDIA H100 80GB HBM3, 81559 MiB): CUDA_VISIBLE_DEVICES=0 ")
    assert lines[1].startswith("gpu1 on GPU 1 (NVIDIA H100 80GB HBM3, 81559 MiB): CUDA_VISIBLE_DEVICES=1 ")
    assert all("-Q gpu --hostname gpu" in line for line in lines)


def test_the_command_falls_back_to_the_cpu_without_gpus() -> None:
    done = dry_run("--gpus", "all", "-Q", "cpu,gpu", fake_gpus="")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("cpu on CPU: CUDA_VISIBLE_DEVICES='' ")
    assert "-Q cpu,gpu --hostname cpu@%h" in done.stdout
    assert "no GPU found" in done.stderr


def test_the_command_refuses_a_gpu_the_machine_lacks() -> None:
    done = dry_run("--gpus", "0,3")
    assert done.returncode == 2
    assert "there is no GPU 3" in done.stderr
