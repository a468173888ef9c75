"""Where the service is and which key to send, as options of every command that talks to it, and
the service's errors as messages and exit statuses rather than tracebacks."""

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import typer

from cli import exits
from cli.output import print_error, print_problem
from cli.stack import state_paths
from client import (
    API_KEY_VARIABLE,
    DEFAULT_URL,
    URL_VARIABLE,
    ApiError,
    KJobsClient,
    KJobsError,
    ServiceUnreachable,
)

UrlOption = Annotated[
    str | None,
    typer.Option("--url", envvar=URL_VARIABLE, help=f"The service's URL [default: {DEFAULT_URL}]."),
]
ApiKeyOption = Annotated[
    str | None,
    typer.Option(
        "--api-key",
        envvar=API_KEY_VARIABLE,
        help="API key [default: the key `kjobs up` wrote to .kjobs/api-key, if any].",
        show_envvar=True,
    ),
]


def api_key_or_local(api_key: str | None) -> str | None:
    """``api_key``, else the key ``kjobs up`` issued in this directory, else none."""
    if api_key:
        return api_key
    try:
        return state_paths().api_key.read_text().strip() or None
    except OSError:
        return None


@contextmanager
def connect(url: str | None, api_key: str | None) -> Iterator[KJobsClient]:
    """A client of the service; an error of any call ends the command with its message on stderr."""
    try:
        with KJobsClient(url, api_key_or_local(api_key)) as client:
            yield client
    except ApiError as error:
        print_problem(error)
        raise typer.Exit(exits.REFUSED) from None
    except ServiceUnreachable as error:
        print_error(str(error))
        raise typer.Exit(exits.UNREACHABLE) from None
    except KJobsError as error:
        print_error(str(error))
        raise typer.Exit(exits.USAGE) from None
