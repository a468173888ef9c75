"""The layers stay apart: shared/ is free of FastAPI and Keras, the API never loads TensorFlow
or Keras, and the Python client needs nothing but httpx, pydantic and the models package."""

import ast
import json
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OUR_PACKAGES = ("api", "cli", "client", "shared", "worker")


def imported_modules(package: str) -> set[str]:
    """Top-level names of every module the package's source imports."""
    names: set[str] = set()
    for path in (ROOT / package).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module.split(".")[0])
    return names


def loaded_by(statement: str) -> set[str]:
    """Every module a fresh interpreter has loaded after running ``statement``."""
    probe = f"import json, sys; {statement}; print(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True)
    return set(json.loads(out.stdout))


def test_shared_imports_neither_fastapi_nor_keras() -> None:
    assert imported_modules("shared").isdisjoint(
        {"fastapi", "starlette", "keras", "tensorflow", "worker", "api"}
    )


def test_the_models_package_imports_only_pydantic_and_the_standard_library() -> None:
    third_party = imported_modules("shared/models") - set(sys.stdlib_module_names)
    assert third_party <= {"pydantic", "pydantic_core", "shared"}


def test_api_source_never_imports_keras_or_the_worker() -> None:
    assert imported_modules("api").isdisjoint({"keras", "tensorflow", "worker"})


def test_loading_the_api_and_the_celery_app_loads_no_backend() -> None:
    loaded = loaded_by("import api.main, worker.celery_app, worker.tasks")
    assert loaded.isdisjoint({"keras", "tensorflow", "jax", "torch"})


def test_the_client_loads_only_the_models_and_its_own_dependencies() -> None:
    loaded = loaded_by("import client")
    ours = {name for name in loaded if name.split(".")[0] in OUR_PACKAGES}
    assert {name for name in ours if name.startswith("shared.")} <= {
        name for name in ours if name.startswith("shared.models")
    }
    assert {name for name in ours if name.startswith("api.")} == {"api.schemas"}
    assert {"redis", "numpy", "celery", "kombu", "keras", "tensorflow", "fastapi"}.isdisjoint(loaded)
    # Whatever else it loads, httpx and pydantic load by themselves (pydantic once it builds a
    # model with constraints); names with a leading underscore are the interpreter's own.
    dependencies = loaded_by("import httpx, pydantic; pydantic.TypeAdapter(pydantic.conint(ge=0))")
    tops = {name.split(".")[0] for name in loaded if not name.startswith("_")}
    third_party = tops - set(sys.stdlib_module_names) - set(OUR_PACKAGES)
    assert third_party - {name.split(".")[0] for name in dependencies} == set()


REDIS_CLIENTS = {
    "shared/jobs/store.py",
    "shared/jobs/attempts.py",
    "shared/jobs/creation.py",
    "shared/jobs/feed.py",
    "shared/studies/store.py",
    "shared/studies/journal.py",  # Optuna's journal, on the service's client
    "shared/datasets/store.py",
    "shared/auth/keys.py",
    "shared/auth/streams.py",
    "shared/webhooks/claims.py",
    "shared/webhooks/outbox.py",
    "shared/webhooks/secrets.py",
    "shared/ops/redis_contract.py",  # reads Redis's settings (CONFIG GET) and its client's options
    "shared/ops/registry.py",
    "shared/scheduling/dispatcher.py",
    "shared/scheduling/waiting.py",
    "shared/ops/telemetry.py",
    "shared/queue.py",
    "shared/redis/channels.py",
    "shared/storage/probe.py",  # the API's probe object, named in Redis for the workers
    "shared/redis/connection.py",
    "shared/redis/scripts.py",
    "shared/redis/watch.py",
    "shared/redis/writes.py",
    "cli/redis_server.py",  # the local Redis ``kjobs up`` starts: it waits for its answer
}


def redis_py_users() -> set[str]:
    """The modules of the service that use redis-py's clients (its exceptions aside)."""
    users: set[str] = set()
    for package in ("api", "worker", "cli", "shared", "client"):
        for path in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    names = [f"{node.module}.{alias.name}" for alias in node.names]
                else:
                    continue
                if any(n.split(".")[0] == "redis" and not re.search(r"Error\b|exceptions", n) for n in names):
                    users.add(str(path.relative_to(ROOT)))
    return users


def test_only_the_stores_use_a_redis_client() -> None:
    assert redis_py_users() == REDIS_CLIENTS
