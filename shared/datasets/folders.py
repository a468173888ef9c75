"""Images sorted into class folders, as many tools export them: ``train/<class>/<image>`` and
optionally ``test/<class>/<image>`` (PNG or JPEG), under any one top folder. The folders' names
are the classes' names."""

from collections.abc import Mapping
from pathlib import PurePosixPath

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
PARTS = ("train", "test")


def class_folders(members: Mapping[str, bytes]) -> dict[str, dict[str, list[str]]] | None:
    """Per part (``train``, ``test``), each class's image paths in name order; None when the
    archive holds no ``train/<class>/`` images."""
    found: dict[str, dict[str, list[str]]] = {}
    for path in members:
        parts = PurePosixPath(path).parts
        if path.lower().endswith(IMAGE_SUFFIXES) and len(parts) >= 3 and parts[-3] in PARTS:
            found.setdefault(parts[-3], {}).setdefault(parts[-2], []).append(path)
    if "train" not in found:
        return None
    return {
        part: {name: sorted(paths) for name, paths in sorted(classes.items())}
        for part, classes in found.items()
    }
