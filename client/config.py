"""Where the service is and which key to send: arguments first, then the environment."""

import os

DEFAULT_URL = "http://127.0.0.1:8000"
URL_VARIABLE = "KJOBS_URL"
API_KEY_VARIABLE = "KJOBS_API_KEY"


def resolve_url(url: str | None = None) -> str:
    """``url``, else ``KJOBS_URL``, else the local default; without a trailing slash."""
    return (url or os.environ.get(URL_VARIABLE) or DEFAULT_URL).rstrip("/")


def resolve_api_key(api_key: str | None = None) -> str | None:
    """``api_key``, else ``KJOBS_API_KEY``; None when neither is set (a service without auth)."""
    return api_key or os.environ.get(API_KEY_VARIABLE) or None
