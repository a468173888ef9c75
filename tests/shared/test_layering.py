"""shared/ stays free of FastAPI and Keras; the API never loads TensorFlow or Keras."""

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


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


def test_shared_imports_neither_fastapi_nor_keras() -> None:
    assert imported_modules("shared").isdisjoint(
        {"fastapi", "starlette", "keras", "tensorflow", "worker", "api"}
    )


def test_api_source_never_imports_keras_or_the_worker() -> None:
    assert imported_modules("api").isdisjoint({"keras", "tensorflow", "worker"})


def test_loading_the_api_and_the_celery_app_loads_no_backend() -> None:
    probe = (
        "import sys, api.main, worker.celery_app, worker.tasks; "
        "print(sorted(m for m in ('keras', 'tensorflow', 'jax', 'torch') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
