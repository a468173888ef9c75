"""Celery workers that train Keras models.

Set before any backend loads (these are only environment variables, safe in a process that
forks): take GPU memory as needed instead of all of it at start, whichever backend is used.
"""

import os

os.environ.setdefault("TF_FORCE_GPU_ALLOW_GROWTH", "true")
os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
