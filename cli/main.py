"""The ``kjobs`` command: run keras-jobs locally."""

import logging
import os
import signal
from types import FrameType
from typing import Annotated, Any, get_args

import httpx
import typer
from rich.console import Console
from rich.logging import RichHandler

from cli.demo import DemoError, curl_examples, demo_submission, run_demo
from cli.redis_server import RedisStartError
from cli.stack import DEFAULT_QUEUES, Stack, StackError, api_argv, local_stack, state_paths, worker_argv
from shared.settings import QueueName

log = logging.getLogger(__name__)

app = typer.Typer(
    help="Run keras-jobs locally: Redis, a Celery worker and the REST API.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
# Paths and URLs must stay whole when the output goes to a file (where Rich assumes 80 columns).
console = Console(soft_wrap=True)
err_console = Console(stderr=True, soft_wrap=True)

HostOption = Annotated[str, typer.Option(help="Interface the API listens on.")]
PortOption = Annotated[int, typer.Option(min=1, max=65535, help="Port the API listens on.")]


@app.callback()
def configure(verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log more.")] = False) -> None:
    """Run keras-jobs locally: Redis, a Celery worker and the REST API."""
    logging.basicConfig(
        level=logging.WARNING,
        format="%(message)s",
        handlers=[RichHandler(console=err_console, show_path=False)],
    )
    logging.getLogger("cli").setLevel(logging.DEBUG if verbose else logging.INFO)


@app.command()
def up(
    host: HostOption = "127.0.0.1",
    port: PortOption = 8000,
    demo: Annotated[bool, typer.Option(help="Submit and follow a demo training job.")] = True,
    epochs: Annotated[int, typer.Option(min=1, help="Epochs of the demo job.")] = 3,
    train_limit: Annotated[int, typer.Option(min=1, help="Training images of the demo job.")] = 5000,
) -> None:
    """Start Redis, a worker and the API; run a demo job; stay up until Ctrl-C."""
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        with local_stack(host, port, state_paths()) as stack:
            show_stack(stack)
            body = demo_submission(epochs, train_limit)
            job_id = demo_job(stack, body) if demo else None
            show_examples(stack.api_url, body, job_id or "$JOB_ID")
            console.print("[bold green]Up.[/] Press Ctrl-C to stop.")
            stack.wait()
    except KeyboardInterrupt:
        console.print("Stopped.")
    except (StackError, RedisStartError) as error:
        err_console.print(f"[bold red]error:[/] {error}", highlight=False)
        raise typer.Exit(1) from None


def _interrupt(signum: int, frame: FrameType | None) -> None:
    # SIGTERM stops the stack the way Ctrl-C does.
    raise KeyboardInterrupt


def show_stack(stack: Stack) -> None:
    """Where the API, Redis, the artifacts and the logs are."""
    console.print(f"[bold]API[/]        {stack.api_url}  (docs: {stack.api_url}/docs)", highlight=False)
    console.print(f"[bold]Redis[/]      {stack.redis.url}  ({stack.redis.origin})", highlight=False)
    console.print(f"[bold]Artifacts[/]  {stack.artifacts_dir}", highlight=False)
    for path in stack.log_files:
        console.print(f"[bold]Log[/]        {path}", highlight=False)


def demo_job(stack: Stack, body: dict[str, Any]) -> str | None:
    """Run the demo job and return its id; a failing request is reported, not fatal."""
    try:
        return run_demo(stack.api_url, body, console, stack.check_running).id
    except (DemoError, httpx.HTTPError, ValueError) as error:
        err_console.print(f"[bold red]demo failed:[/] {error}", highlight=False, soft_wrap=True)
        return None


def show_examples(api_url: str, body: dict[str, Any], job_id: str) -> None:
    """Curl lines to paste while the stack runs."""
    console.print("\nTry the API:")
    for line in curl_examples(api_url, body, job_id):
        console.print(f"  {line}", markup=False, highlight=False, soft_wrap=True)
    console.print()


@app.command()
def worker(
    queues: Annotated[str, typer.Option("--queues", "-Q", help="Comma-separated queues.")] = DEFAULT_QUEUES,
) -> None:
    """Run a Celery worker in the foreground (settings from the environment, e.g. REDIS_URL)."""
    unknown = set(queues.split(",")) - set(get_args(QueueName))
    if unknown:
        raise typer.BadParameter(f"unknown queues: {', '.join(sorted(unknown))}", param_hint="--queues")
    _exec(worker_argv(queues))


@app.command()
def api(host: HostOption = "127.0.0.1", port: PortOption = 8000) -> None:
    """Run the API in the foreground (settings from the environment, e.g. REDIS_URL)."""
    _exec(api_argv(host, port))


def _exec(argv: list[str]) -> None:
    log.debug("exec %s", " ".join(argv))
    os.execv(argv[0], argv)


def main() -> None:
    """The console script's entry point."""
    app()
