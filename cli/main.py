"""The ``kjobs`` command: run keras-jobs locally."""

import logging
import os
import shlex
import signal
from pathlib import Path
from types import FrameType
from typing import Annotated, Any

import httpx
import typer
from redis import RedisError
from rich.console import Console
from rich.logging import RichHandler
from rich.markup import escape

from cli import admin, dashboard, jobs, studies, worker_command
from cli.demo import DemoError, curl_examples, demo_submission, run_demo
from cli.redis_server import RedisStartError
from cli.stack import Stack, StackError, api_argv, local_stack, state_paths
from shared.settings import Settings, get_settings

log = logging.getLogger(__name__)

app = typer.Typer(
    help="Run keras-jobs locally, and submit, follow and manage its jobs and studies.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(admin.app, name="admin")
app.add_typer(studies.app, name="study")
jobs.register(app)
# Paths and URLs must stay whole when the output goes to a file (where Rich assumes 80 columns).
console = Console(soft_wrap=True)
err_console = Console(stderr=True, soft_wrap=True)

HostOption = Annotated[str, typer.Option(help="Interface the API listens on.")]
PortOption = Annotated[int, typer.Option(min=1, max=65535, help="Port the API listens on.")]
LOCAL_TENANT = "local"


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
    """Start Redis, a worker and the API; issue an API key; run a demo job; stay up until Ctrl-C."""
    signal.signal(signal.SIGTERM, _interrupt)
    paths = state_paths()
    try:
        with local_stack(host, port, paths) as stack:
            show_stack(stack, paths.operator_token)
            api_key = local_api_key(get_settings(), stack.redis.url, paths.api_key)
            body = demo_submission(epochs, train_limit)
            job_id = demo_job(stack, body, api_key) if demo else None
            show_examples(stack.api_url, body, job_id or "$JOB_ID", paths.api_key if api_key else None)
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


def show_stack(stack: Stack, operator_token: Path) -> None:
    """Where the API, Redis, the artifacts, the operator token and the logs are."""
    console.print(f"[bold]API[/]        {stack.api_url}  (docs: {stack.api_url}/docs)", highlight=False)
    console.print(f"[bold]Redis[/]      {stack.redis.url}  ({stack.redis.origin})", highlight=False)
    console.print(f"[bold]Artifacts[/]  {stack.artifacts_dir}", highlight=False)
    where = escape(str(operator_token))
    console.print(f"[bold]Operator[/]   {where}  (the token of /metrics and /readyz)", highlight=False)
    for path in stack.log_files:
        console.print(f"[bold]Log[/]        {path}", highlight=False)


def local_api_key(settings: Settings, redis_url: str, path: Path) -> str | None:
    """Issue a new API key of tenant ``local`` into ``path`` and say so; None when auth is off."""
    if not settings.auth_enabled:
        path.unlink(missing_ok=True)  # a key of an earlier run would only mislead
        console.print("[bold]Auth[/]       authentication is off (AUTH_ENABLED=false)", highlight=False)
        return None
    try:
        info, key = admin.issue_key_file(settings, redis_url, LOCAL_TENANT, "kjobs up", path)
    except (RedisError, OSError) as error:
        raise StackError(f"could not issue an API key: {error}") from None
    where = escape(str(path))
    console.print(f"[bold]Key[/]        {where}  (tenant {info.tenant}, id {info.id})", highlight=False)
    return key


def demo_job(stack: Stack, body: dict[str, Any], api_key: str | None) -> str | None:
    """Run the demo job and return its id; a failing request is reported, not fatal."""
    try:
        return run_demo(stack.api_url, body, console, stack.check_running, api_key).id
    except (DemoError, httpx.HTTPError, ValueError) as error:
        err_console.print(f"[bold red]demo failed:[/] {error}", highlight=False, soft_wrap=True)
        return None


def show_examples(api_url: str, body: dict[str, Any], job_id: str, key_path: Path | None) -> None:
    """Curl lines to paste while the stack runs; with ``key_path``, they send its API key."""
    console.print("\nTry the API:")
    lines = curl_examples(api_url, body, job_id, authenticated=key_path is not None)
    if key_path is not None:
        lines.insert(0, f"export KJOBS_API_KEY=$(cat {shlex.quote(str(key_path))})")
    for line in lines:
        console.print(f"  {line}", markup=False, highlight=False, soft_wrap=True)
    console.print()


app.command()(worker_command.worker)
app.command()(dashboard.dashboard)


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


if __name__ == "__main__":
    main()
