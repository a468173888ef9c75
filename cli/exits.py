"""Exit statuses of the ``kjobs`` commands that talk to the service, for scripts to rely on."""

from typing import Final

from shared.models.jobs import JobStatus

OK: Final = 0
"""Done; for a followed job, it succeeded."""
JOB_FAILED: Final = 1
"""The followed job failed."""
USAGE: Final = 2
"""Bad arguments or an unreadable spec file (as every Typer command answers bad usage)."""
JOB_CANCELLED: Final = 3
"""The followed job was cancelled."""
REFUSED: Final = 4
"""The service refused the request (its problem document is printed on stderr)."""
UNREACHABLE: Final = 5
"""The service could not be reached."""


def for_status(status: JobStatus) -> int:
    """The exit status of a command that followed a job to ``status``."""
    return {JobStatus.SUCCEEDED: OK, JobStatus.CANCELLED: JOB_CANCELLED}.get(status, JOB_FAILED)
