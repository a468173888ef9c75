"""How the stores encode what they keep in Redis: hash fields as JSON, replies as str."""

import json
from collections.abc import Mapping
from typing import Any


def encode(fields: Mapping[str, Any]) -> dict[str, str]:
    """Hash fields, each as JSON."""
    return {name: json.dumps(value) for name, value in fields.items()}


def decode(raw: Mapping[str, str]) -> dict[str, Any]:
    """Hash fields written by ``encode``."""
    return {name: json.loads(value) for name, value in raw.items()}


def strings(values: Any) -> list[str]:
    """A reply of a client made with ``decode_responses=True``: str items, typed as such."""
    return [str(value) for value in values]
