"""``kjobs worker``: the machine's worker layout (one worker per GPU, or several sharing each, or
one on the CPU), supervised."""

import logging
from typing import Annotated

import typer

from cli.supervisor import RestartPolicy, Supervisor
from cli.worker_layout import LayoutError, plan_workers
from shared.ops.hardware import FAKE_GPUS_ENV, GpuListError, list_gpus

log = logging.getLogger(__name__)


def worker(
    gpus: Annotated[
        str | None,
        typer.Option(
            help="'all', or GPU indexes such as 0,1: one worker per GPU on the gpu queue. Without it, "
            f"or on a machine without GPUs, one CPU worker. ({FAKE_GPUS_ENV}, a testing aid, lists "
            "GPUs in place of nvidia-smi: '0:NVIDIA H100:81559,1:NVIDIA H100:81559'.)",
        ),
    ] = None,
    queues: Annotated[
        str | None,
        typer.Option(
            "--queues", "-Q", help="The CPU worker's queues: cpu (default), or cpu,gpu on a lone machine."
        ),
    ] = None,
    slots_per_gpu: Annotated[
        int,
        typer.Option(
            min=1,
            max=64,
            help="Workers per GPU, each held to an equal share of its memory (GPU_MEMORY_MB), so that "
            "several small jobs share one GPU.",
        ),
    ] = 1,
    loglevel: Annotated[str, typer.Option("--loglevel", "-l", help="The workers' least log level.")] = "INFO",
    max_restarts: Annotated[
        int, typer.Option(min=1, help="Restarts of one crashed worker per minute before giving up.")
    ] = RestartPolicy.max_restarts_per_minute,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the workers it would start, and exit.")
    ] = False,
) -> None:
    """Run this machine's Celery workers in the foreground, restarting any that crashes (settings from
    the environment, e.g. REDIS_URL); SIGTERM or Ctrl-C stops them all."""
    try:
        plan = plan_workers(gpus, queues, list_gpus(), loglevel, slots_per_gpu)
    except (LayoutError, GpuListError) as exc:
        raise typer.BadParameter(str(exc), param_hint="--gpus/--queues") from None
    if gpus is not None and plan[0].gpu is None:
        log.warning("--gpus %s: no GPU found (nvidia-smi lists none); running one CPU worker", gpus)
    if dry_run:
        for process in plan:
            typer.echo(process.describe())
        return
    code = Supervisor(plan, RestartPolicy(max_restarts_per_minute=max_restarts)).run()
    raise typer.Exit(code)
