#!/usr/bin/env bash
# The case study on this machine's GPUs, through the service (see docs/gpu.md). For a machine with
# an NVIDIA GPU, CUDA and JAX, but without TensorFlow or a package registry: bench/gpu_prepare.sh,
# run beforehand where the registry is reachable, left the missing wheels in .gpu-wheels/ and
# MNIST in .gpu-datasets/. Options go to bench/gpu_check.py (--epochs, --train-limit, --budget...).
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
for needed in .gpu-wheels .gpu-datasets/mnist; do
  [ -d "$needed" ] || { echo "missing $needed: run bench/gpu_prepare.sh first, where pip can download" >&2; exit 2; }
done

"$PYTHON" bench/gpu_check.py --prepare-site
export PYTHONPATH="$PWD/.gpu-site:$PWD${PYTHONPATH:+:$PYTHONPATH}"
export KERAS_BACKEND="${KERAS_BACKEND:-jax}"
# The embedded Redis's server program, unless the machine has its own.
command -v redis-server >/dev/null || export PATH="$PWD/.gpu-wheels/bin:$PATH"
chmod +x .gpu-wheels/bin/redis-server 2>/dev/null || true
nvidia-smi --query-gpu=index,name,memory.total,driver_version --format=csv 2>/dev/null || echo "no nvidia-smi"

# A hard stop past the check's own budget, so a hang cannot hold the machine.
exec timeout --signal=TERM --kill-after=30 "${GPU_CHECK_TIMEOUT:-470}" "$PYTHON" bench/gpu_check.py "$@"
