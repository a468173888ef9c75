"""Child processes of the CLI: each in a session of its own, logged to a file, stopped gently."""

import ctypes
import logging
import os
import shlex
import signal
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

STOP_GRACE_SECONDS = 10.0
PATIENT_SECONDS = 2.0  # how long a stop may take before we say we are waiting


@dataclass(frozen=True)
class Child:
    """A process the CLI started, and the file its output goes to."""

    name: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def running(self) -> bool:
        """Whether the process has not exited yet."""
        return self.process.poll() is None


_PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """In a child before exec: should its parent be killed (SIGKILL, OOM), the kernel sends the
    child a SIGTERM, rather than leaving it running with nobody to stop it."""
    with suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def spawn(name: str, argv: Sequence[str], log_path: Path, env: Mapping[str, str] | None = None) -> Child:
    """Start ``argv`` with stdout and stderr in ``log_path`` (truncated first)."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("wb") as log_file:
        # A session of its own: a Ctrl-C in the terminal reaches only the CLI, which then
        # stops the children in order instead of all of them racing to exit at once.
        process = subprocess.Popen(
            list(argv),
            env=dict(env) if env is not None else None,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            # In a session of its own, it would outlive a CLI that is killed outright.
            preexec_fn=die_with_parent if sys.platform == "linux" else None,
        )
    log.debug("started %s (pid %d): %s", name, process.pid, shlex.join(argv))
    return Child(name, process, log_path)


def terminate(child: Child, grace_seconds: float = STOP_GRACE_SECONDS) -> None:
    """SIGTERM the child's process group, then SIGKILL it if it outlives the grace period."""
    if not child.running():
        return
    log.debug("stopping the %s (pid %d)", child.name, child.process.pid)
    _signal_group(child.process, signal.SIGTERM)
    if _exited(child, min(PATIENT_SECONDS, grace_seconds)):
        return
    log.info("waiting up to %.0f s for the %s to stop", grace_seconds, child.name)
    if not _exited(child, grace_seconds - PATIENT_SECONDS):
        log.warning("the %s did not stop within %.0f s; killing it", child.name, grace_seconds)
        _signal_group(child.process, signal.SIGKILL)
        child.process.wait()


def _exited(child: Child, seconds: float) -> bool:
    try:
        child.process.wait(max(seconds, 0.0))
    except subprocess.TimeoutExpired:
        return False
    return True


def _signal_group(process: subprocess.Popen[bytes], signum: signal.Signals) -> None:
    # The child leads its own session, so its pid is its group id; the group also holds any
    # processes it forked. It is not reaped yet, so the id cannot have been reused.
    with suppress(ProcessLookupError):
        os.killpg(process.pid, signum)


@contextmanager
def signals_deferred() -> Iterator[None]:
    """Ignore SIGINT and SIGTERM inside the block, so a second Ctrl-C cannot cut a shutdown short."""
    previous = {signum: signal.signal(signum, signal.SIG_IGN) for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
