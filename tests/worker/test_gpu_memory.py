"""A worker's share of its GPU: a backend's report of a device out of memory is told apart from
other failures (each backend's own exception, made here as the backend makes it), and a limit
on a machine without a GPU is a no-op that says so."""

import logging

import pytest
import tensorflow as tf
import torch

from worker.gpu_memory import limit_gpu_memory, ran_out_of_memory


def test_each_backend_s_out_of_memory_error_is_recognised() -> None:
    assert ran_out_of_memory(tf.errors.ResourceExhaustedError(None, None, "OOM when allocating tensor"))
    assert ran_out_of_memory(torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"))
    assert ran_out_of_memory(RuntimeError("RESOURCE_EXHAUSTED: Out of memory while trying to allocate"))


def test_other_failures_are_not_taken_for_it() -> None:
    assert not ran_out_of_memory(ValueError("Input 0 of layer dense is incompatible"))
    assert not ran_out_of_memory(tf.errors.InvalidArgumentError(None, None, "logits and labels differ"))


def test_a_limit_without_a_gpu_changes_nothing_and_says_so(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="worker.gpu_memory"):
        limit_gpu_memory(4000)
    assert tf.config.list_logical_devices("GPU") == []
    assert "GPU_MEMORY_MB=4000 not applied: the tensorflow backend sees no GPU here" in caplog.text
