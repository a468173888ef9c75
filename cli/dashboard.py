"""``kjobs dashboard``: optuna-dashboard on the service's searches, read from the Redis that
``REDIS_URL`` names (Sentinel and TLS included), under the service's key prefix."""

from typing import Annotated

import typer

from shared.redis.connection import connect
from shared.redis.keys import RedisKeys
from shared.settings import get_settings
from shared.studies.journal import journal_prefix, storage_on


def dashboard(
    host: Annotated[str, typer.Option(help="Where optuna-dashboard listens.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Its port.")] = 8080,
) -> None:
    """Serve optuna-dashboard on every search of the deployment (the `dashboard` extra)."""
    try:
        import optuna_dashboard
    except ImportError:
        typer.echo("optuna-dashboard is not installed: pip install 'keras-jobs[dashboard]'", err=True)
        raise typer.Exit(3) from None
    settings = get_settings()
    storage = storage_on(connect(settings), journal_prefix(RedisKeys(settings.key_prefix)))
    optuna_dashboard.run_server(storage, host=host, port=port)
