"""A job submission from what the command line gives: a JSON or YAML file, a preset, and flags
that override both."""

import json
import re
from pathlib import Path
from typing import Any

import typer
import yaml

from shared.models.presets import deep_merge


class SpecLoader(yaml.SafeLoader):
    """YAML read as YAML 1.2 reads numbers: ``1e-4`` is a float. PyYAML follows YAML 1.1, which
    wants a dot in a float and reads ``1e-4`` as a string, one the service refuses for a number."""


SpecLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?[0-9][0-9_]*(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def read_document(path: Path, what: str = "spec") -> dict[str, Any]:
    """A JSON or YAML file (by its suffix; YAML otherwise) holding one object."""
    try:
        text = path.read_text(encoding="utf-8")
        # SpecLoader is a SafeLoader: no Python objects from a file.
        data = json.loads(text) if path.suffix.lower() == ".json" else yaml.load(text, SpecLoader)
    except OSError as error:
        raise typer.BadParameter(f"cannot read {path}: {error.strerror}", param_hint=what) from None
    except (ValueError, yaml.YAMLError) as error:  # json's decode error is a ValueError
        raise typer.BadParameter(f"{path} is not valid JSON or YAML: {error}", param_hint=what) from None
    if not isinstance(data, dict):
        raise typer.BadParameter(f"{path} must hold an object (a mapping of fields)", param_hint=what)
    return data


def parse_tags(pairs: list[str], separator: str = "=") -> dict[str, str]:
    """``["team=vision"]`` as ``{"team": "vision"}``."""
    tags = {}
    for pair in pairs:
        key, found, value = pair.partition(separator)
        if not found or not key:
            raise typer.BadParameter(f"{pair!r} is not key{separator}value", param_hint="--tag")
        tags[key] = value
    return tags


def parse_layers(text: str) -> list[int]:
    """``"256,128"`` as ``[256, 128]``."""
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise typer.BadParameter(f"{text!r} is not a comma-separated list of unit counts") from None


def nested(flat: dict[str, Any]) -> dict[str, Any]:
    """Dotted keys with a value (``{"training.epochs": 3}``) as a nested object; None values dropped."""
    result: dict[str, Any] = {}
    for path, value in flat.items():
        if value is None:
            continue
        *parents, leaf = path.split(".")
        node = result
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return result


def submission(file: Path | None, preset: str | None, overrides: dict[str, Any]) -> dict[str, Any]:
    """The body to post: the file's fields, then ``preset``, then the flags, each over the last."""
    body = read_document(file) if file else {}
    if preset:
        body["preset"] = preset
    return deep_merge(body, nested(overrides))
