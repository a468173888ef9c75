"""``kjobs admin``: manage API keys straight in Redis, with the settings from the environment
(REDIS_URL, KEY_PREFIX)."""

import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, NoReturn
from urllib.parse import urlsplit, urlunsplit

import typer
from redis import RedisError
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from shared.auth.keys import ApiKeyInfo, KeyStore
from shared.redis.connection import connect
from shared.redis.keys import RedisKeys
from shared.settings import Settings, get_settings

app = typer.Typer(
    help="Manage API keys in Redis (REDIS_URL and KEY_PREFIX from the environment).",
    no_args_is_help=True,
)
console = Console(soft_wrap=True)
err_console = Console(stderr=True, soft_wrap=True)


def fail(message: str, code: int) -> NoReturn:
    """Print ``message`` as an error on stderr and end the command with exit ``code``."""
    err_console.print(f"[bold red]error:[/] {escape(message)}", highlight=False)
    raise typer.Exit(code)


def redacted(url: str) -> str:
    """``url`` with its password, if any, masked."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{parts.username or ''}:***@{host}"))


@contextmanager
def key_store() -> Iterator[KeyStore]:
    """The API keys in the environment's Redis; a Redis error ends the command with exit 1."""
    try:
        settings = get_settings()
        redis = connect(settings)
    except ValueError as error:  # pydantic's ValidationError too
        fail(f"invalid settings in the environment: {error}", 2)
    try:
        with redis:
            yield KeyStore(redis, RedisKeys(settings.key_prefix))
    except RedisError as error:
        fail(f"cannot use Redis at {redacted(settings.redis_url)}: {error}", 1)


@app.command("create-key")
def create_key(
    tenant: Annotated[str, typer.Option(help="Tenant the key belongs to.", show_default=False)],
    name: Annotated[str, typer.Option(help="A note on what the key is for.")] = "",
) -> None:
    """Create an API key; its last line of output is the key alone, shown only this once."""
    with key_store() as store:
        try:
            info, key = store.create(tenant, name)
        except ValueError as error:
            fail(str(error), 2)
    console.print(f"Created API key {info.id} for tenant {info.tenant}", markup=False, highlight=False)
    console.print(key, markup=False, highlight=False)


@app.command("list-keys")
def list_keys() -> None:
    """List the API keys (never their secrets)."""
    with key_store() as store:
        infos = store.list()
    if not infos:
        console.print("No API keys.")
        return
    console.print(keys_table(infos))


def keys_table(infos: list[ApiKeyInfo]) -> Table:
    """A table of API keys: id, tenant, name, and when each was created and revoked (UTC)."""
    table = Table("id", "tenant", "name", "created (UTC)", "revoked (UTC)", highlight=False)
    for column in (table.columns[0], table.columns[3], table.columns[4]):
        column.no_wrap = True
    for info in infos:
        table.add_row(
            info.id, escape(info.tenant), escape(info.name), when(info.created_at), when(info.revoked_at)
        )
    return table


def when(moment: datetime | None) -> str:
    """A time in UTC to the second; "-" for none."""
    return "-" if moment is None else moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


@app.command("revoke-key")
def revoke_key(key_id: Annotated[str, typer.Argument(metavar="ID", help="The key's id.")]) -> None:
    """Revoke an API key at once."""
    with key_store() as store:
        found = store.revoke(key_id)
    if not found:
        fail(f"no API key with id {key_id!r}", 1)
    console.print(f"Revoked API key {key_id}", markup=False, highlight=False)


def issue_key_file(
    settings: Settings, redis_url: str, tenant: str, name: str, path: Path
) -> tuple[ApiKeyInfo, str]:
    """Create a key of ``tenant`` in the Redis at ``redis_url`` (under the key prefix of
    ``settings``), write it to ``path`` (mode 0600), and return its record and the key."""
    with connect(settings.model_copy(update={"redis_url": redis_url})) as redis:
        info, key = KeyStore(redis, RedisKeys(settings.key_prefix)).create(tenant, name)
    write_private(path, key + "\n")
    return info, key


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path``, readable by its owner only, replacing whatever was there."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        os.fchmod(descriptor, 0o600)  # an existing file keeps its mode through O_CREAT
        handle.write(text)
