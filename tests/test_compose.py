"""docker-compose.yml, parsed only: no Docker or Redis is needed."""

import importlib
import re
import shlex
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml
from redis import Redis

from cli.worker_layout import WorkerProcess, plan_workers
from shared.models.devices import Gpu
from shared.ops.redis_contract import connection_facts

ROOT = Path(__file__).resolve().parents[1]
WORKERS = ("worker-gpu", "worker-cpu")


@pytest.fixture(scope="module")
def services() -> dict[str, Any]:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    found: dict[str, Any] = compose["services"]
    return found


def argv(service: dict[str, Any]) -> list[str]:
    """A service's command as a list of arguments, whether written as a string or a list."""
    command = service["command"]
    return shlex.split(command) if isinstance(command, str) else [str(arg) for arg in command]


def option(args: list[str], name: str) -> str:
    """The value that follows ``name`` in ``args``."""
    return args[args.index(name) + 1]


VARIABLE = re.compile(r"\$\{(\w+)(?::([?-])([^}]*))?\}")


def interpolate(value: str, env: Mapping[str, str]) -> str:
    """``value`` with its ``${NAME}``, ``${NAME:-default}`` and ``${NAME:?error}`` replaced as
    Compose replaces them; a ``:?`` variable unset or empty raises KeyError."""

    def replace(match: re.Match[str]) -> str:
        name, kind, text = match.groups()
        if env.get(name):
            return env[name]
        if kind == "?":
            raise KeyError(f"{name}: {text}")
        return text if kind == "-" else ""

    return VARIABLE.sub(replace, value)


TWO_GPUS = [
    Gpu(index=0, name="NVIDIA H100", memory_bytes=2**36),
    Gpu(index=1, name="NVIDIA H100", memory_bytes=2**36),
]


def worker_plan(service: dict[str, Any], gpus: list[Gpu]) -> list[WorkerProcess]:
    """The worker processes a ``kjobs worker`` service starts on a machine with ``gpus``."""
    args = argv(service)
    assert args[:2] == ["kjobs", "worker"]
    given = {name: option(args, name) for name in ("--gpus", "-Q") if name in args}
    return plan_workers(given.get("--gpus"), given.get("-Q"), gpus)


def test_services_are_exactly_these(services: dict[str, Any]) -> None:
    assert set(services) == {"redis", "minio", "minio-bucket", "api", "worker-gpu", "worker-cpu"}


def test_redis_persists_never_evicts_and_has_a_healthcheck(services: dict[str, Any]) -> None:
    redis = services["redis"]
    args = argv(redis)
    assert option(args, "--appendonly") == "yes"
    assert option(args, "--appendfsync") == "everysec"
    assert option(args, "--maxmemory-policy") == "noeviction"
    assert any(volume.endswith(":/data") for volume in redis["volumes"])


def test_redis_asks_for_a_password_that_nothing_defaults(services: dict[str, Any]) -> None:
    redis = services["redis"]
    password = option(argv(redis), "--requirepass")
    for unset in ({}, {"REDIS_PASSWORD": ""}):
        with pytest.raises(KeyError, match="REDIS_PASSWORD"):
            interpolate(password, unset)
    assert interpolate(password, {"REDIS_PASSWORD": "0f1e2d"}) == "0f1e2d"
    # redis-cli answers NOAUTH, and exits 0, without the password: the healthcheck sends it and
    # looks for PONG.
    assert interpolate(redis["environment"]["REDISCLI_AUTH"], {"REDIS_PASSWORD": "0f1e2d"}) == "0f1e2d"
    assert redis["healthcheck"]["test"] == ["CMD-SHELL", "redis-cli ping | grep -q PONG"]


def test_only_the_api_publishes_a_port(services: dict[str, Any]) -> None:
    # Redis takes jobs and holds secrets: only the compose network reaches it.
    assert [name for name, service in services.items() if "ports" in service] == ["api"]
    assert not any("network_mode" in service for service in services.values())


def test_every_service_restarts(services: dict[str, Any]) -> None:
    restarts = {name: service["restart"] for name, service in services.items()}
    assert restarts == {**dict.fromkeys(services, "unless-stopped"), "minio-bucket": "on-failure"}


@pytest.mark.parametrize("name", ["api", *WORKERS])
def test_keeps_its_artifacts_in_the_minio_bucket_and_no_volume(services: dict[str, Any], name: str) -> None:
    env = services[name]["environment"]
    assert env["ARTIFACTS_URL"] == "s3://kjobs/artifacts"
    assert (env["AWS_ENDPOINT_URL"], env["AWS_ACCESS_KEY_ID"]) == ("http://minio:9000", "kjobs")
    secret = {"MINIO_ROOT_PASSWORD": "a1b2"}
    assert interpolate(env["AWS_SECRET_ACCESS_KEY"], secret) == "a1b2"
    assert not any(volume.endswith(":/artifacts") for volume in services[name].get("volumes", []))
    assert services[name]["depends_on"]["minio-bucket"] == {"condition": "service_completed_successfully"}


def test_minio_asks_for_a_password_that_nothing_defaults_and_its_bucket_is_made(
    services: dict[str, Any],
) -> None:
    minio, bucket = services["minio"], services["minio-bucket"]
    for unset in ({}, {"MINIO_ROOT_PASSWORD": ""}):
        with pytest.raises(KeyError, match="MINIO_ROOT_PASSWORD"):
            interpolate(minio["environment"]["MINIO_ROOT_PASSWORD"], unset)
    assert minio["environment"]["MINIO_ROOT_USER"] == "kjobs"
    assert any(volume.endswith(":/data") for volume in minio["volumes"])
    assert "mc mb --ignore-existing store/kjobs" in bucket["command"][0]
    assert bucket["depends_on"] == {"minio": {"condition": "service_healthy"}}


@pytest.mark.parametrize("name", WORKERS)
def test_workers_read_datasets_read_only(services: dict[str, Any], name: str) -> None:
    assert "${DATASETS_PATH:-./datasets}:/datasets:ro" in services[name]["volumes"]
    assert services[name]["environment"]["DATASETS_DIR"] == "/datasets"


@pytest.mark.parametrize("name", ["api", *WORKERS])
def test_waits_for_healthy_redis_and_reaches_it_with_its_password(
    services: dict[str, Any], name: str
) -> None:
    assert services[name]["depends_on"]["redis"] == {"condition": "service_healthy"}
    url = interpolate(services[name]["environment"]["REDIS_URL"], {"REDIS_PASSWORD": "0f1e2d"})
    assert url == "redis://:0f1e2d@redis:6379/0"
    # Plain TCP on the compose network, which /readyz reports as a warning it cannot judge.
    assert connection_facts(Redis.from_url(url)) == ("password", False, "redis")


@pytest.mark.parametrize("name", ["api", *WORKERS])
def test_app_targets_exist(services: dict[str, Any], name: str) -> None:
    args = argv(services[name]) if name == "api" else worker_plan(services[name], TWO_GPUS)[0].argv
    target = option(args, "-A") if "celery" in args else args[1]
    assert args[0] == "uvicorn" or args[1:3] == ["-m", "celery"]
    module_name, _, attribute = target.partition(":")
    assert attribute, f"{target} names no attribute"
    assert hasattr(importlib.import_module(module_name), attribute)


@pytest.mark.parametrize("name", WORKERS)
def test_worker_queues_are_known(services: dict[str, Any], name: str) -> None:
    from shared.queue import QUEUES

    for process in worker_plan(services[name], TWO_GPUS):
        queues = option(process.argv, "-Q").split(",")
        assert queues == [name.removeprefix("worker-")]
        assert set(queues) <= set(QUEUES)


def test_gpu_service_runs_one_pinned_solo_worker_per_gpu(services: dict[str, Any]) -> None:
    plan = worker_plan(services["worker-gpu"], TWO_GPUS)
    assert [process.env for process in plan] == [{"CUDA_VISIBLE_DEVICES": "0"}, {"CUDA_VISIBLE_DEVICES": "1"}]
    assert [option(process.argv, "--hostname") for process in plan] == ["gpu0@%h", "gpu1@%h"]
    assert all("--pool=solo" in process.argv for process in plan)


def test_cpu_service_runs_one_worker_that_sees_no_gpu(services: dict[str, Any]) -> None:
    (process,) = worker_plan(services["worker-cpu"], TWO_GPUS)
    assert process.env == {"CUDA_VISIBLE_DEVICES": ""}
    assert option(process.argv, "--hostname") == "cpu@%h"


def test_gpu_worker_reserves_the_nvidia_gpus(services: dict[str, Any]) -> None:
    devices = services["worker-gpu"]["deploy"]["resources"]["reservations"]["devices"]
    assert devices == [{"driver": "nvidia", "count": "all", "capabilities": ["gpu"]}]
    assert "deploy" not in services["worker-cpu"]


@pytest.mark.parametrize("name", ["api", *WORKERS])
def test_dockerfile_exists(services: dict[str, Any], name: str) -> None:
    build = services[name]["build"]
    assert (ROOT / build["context"] / build["dockerfile"]).is_file()


def test_api_image_skips_tensorflow(services: dict[str, Any]) -> None:
    assert services["api"]["build"]["args"]["EXTRAS"] == ""
    assert all(services[name]["build"]["args"]["EXTRAS"] == "worker" for name in WORKERS)


def test_the_api_is_probed_on_liveness_and_takes_the_operator_token(services: dict[str, Any]) -> None:
    api = services["api"]
    # /healthz needs no token; /readyz and /metrics take OPERATOR_TOKEN, passed on from the shell.
    assert "/healthz" in " ".join(api["healthcheck"]["test"])
    assert api["environment"]["OPERATOR_TOKEN"] == "${OPERATOR_TOKEN:-}"
