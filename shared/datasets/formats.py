"""Reading an uploaded dataset: an ``.npz``, the four IDX files, or a zip of either or of the
case study's layout (``train.csv`` with ``filename,label`` rows beside a folder of PNG images,
and optionally ``test.csv``). Everything is read in memory, never extracted to disk; archives
are checked for paths that leave their folder and for sizes that expand too far.
"""

import csv
import io
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

import numpy as np
import numpy.typing as npt
from PIL import Image, UnidentifiedImageError

from shared.datasets.folders import class_folders
from shared.datasets.idx import CHUNK, IdxError, IdxExpandsTooFar, idx_part, parse_idx
from shared.datasets.tables import TableError, read_table
from shared.errors import FieldError, SpecInvalid
from shared.models.datasets import (
    MAX_CLASSES,
    MAX_FEATURES,
    MAX_IMAGE_SIDE,
    MAX_TARGETS,
    MIN_CLASSES,
    MIN_IMAGE_SIDE,
    DatasetKind,
)

Array = npt.NDArray[Any]
MIN_SAMPLES = 20


@dataclass(frozen=True)
class UploadedArrays:
    """An upload's arrays, checked: images as uint8 (N, H, W) or (N, H, W, C), or feature vectors
    as float32 (N, F); labels as class indices (with the classes' names) or float32 targets
    (N, T)."""

    x_train: Array
    y_train: Array
    x_test: Array
    y_test: Array
    test_held_out: bool
    class_names: list[str] | None = None
    column_names: list[str] | None = None

    @property
    def kind(self) -> DatasetKind:
        return "features" if self.x_train.ndim == 2 else "images"

    @property
    def sample_shape(self) -> list[int]:
        shape = list(self.x_train.shape[1:])
        return [*shape, 1] if len(shape) == 2 else shape


def refuse(message: str, kind: str = "invalid_dataset") -> SpecInvalid:
    """The 422 of a bad upload: the field is the uploaded ``file``."""
    return SpecInvalid([FieldError("file", message, kind)])


def read_upload(
    files: Mapping[str, bytes], convert: bool, max_expanded_bytes: int, label_column: str | None = None
) -> UploadedArrays:
    """The arrays of an upload (file name to content), checked; ``SpecInvalid`` says what is wrong.

    A CSV table (one ``.csv``, or ``train.csv`` with ``test.csv``) needs ``label_column``."""
    names = sorted(files)
    if names and all(name.lower().endswith(".csv") for name in names):
        return _from_tables(files, label_column)
    if len(files) == 1:
        ((name, data),) = files.items()
        if name.endswith(".npz"):
            return _from_npz(data, max_expanded_bytes, convert)
        if name.endswith(".zip"):
            return _from_zip(data, max_expanded_bytes, convert)
    if files and all(idx_part(name) for name in files):
        return _from_idx(files, max_expanded_bytes)
    raise refuse(
        "upload an .npz, a .zip, the four IDX files (train/t10k images and labels), or a CSV table "
        "(train.csv, optional test.csv)"
    )


def _from_tables(files: Mapping[str, bytes], label_column: str | None) -> UploadedArrays:
    if not label_column:
        raise SpecInvalid([FieldError("label_column", "a CSV table needs the name of its label column")])
    if len(files) == 1:
        ((train_name, train_data),) = files.items()
        parts = {"train": (train_name, train_data)}
    elif set(files) == {"train.csv", "test.csv"}:
        parts = {part: (f"{part}.csv", files[f"{part}.csv"]) for part in ("train", "test")}
    else:
        raise refuse("upload one CSV table, or train.csv and test.csv")
    arrays: dict[str, npt.NDArray[np.generic]] = {}
    columns: list[str] = []
    for part, (name, data) in parts.items():
        try:
            table = read_table(data, name, label_column)
        except TableError as exc:
            raise refuse(str(exc)) from None
        if columns and table.columns != columns:
            raise refuse(f"{name}'s feature columns differ from train.csv's")
        columns = table.columns
        arrays[f"x_{part}"], arrays[f"y_{part}"] = table.features, table.labels
    return _checked(arrays, convert=False, column_names=columns)


def _members(data: bytes, max_expanded_bytes: int) -> dict[str, bytes]:
    """Every file of a zip, read in memory. What each member produces is counted against the
    budget as it is read, whatever sizes the archive declares."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        infos = [info for info in archive.infolist() if not info.is_dir()]
    except (zipfile.BadZipFile, ValueError) as exc:
        raise refuse(f"the archive cannot be read ({exc})") from None
    escaping = [info.filename for info in infos if _escapes(info.filename)]
    if escaping:
        raise refuse(f"paths leave the archive's folder: {', '.join(escaping[:5])}", "unsafe_path")
    too_far = refuse(f"the archive expands past {max_expanded_bytes} bytes", "too_large")
    if sum(info.file_size for info in infos) > max_expanded_bytes:
        raise too_far
    members, produced = {}, 0
    try:
        for info in infos:
            parts = []
            with archive.open(info) as member:
                while part := member.read(CHUNK):
                    produced += len(part)
                    if produced > max_expanded_bytes:
                        raise too_far
                    parts.append(part)
            members[info.filename] = b"".join(parts)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise refuse(f"the archive cannot be read ({exc})") from None
    return members


def _escapes(name: str) -> bool:
    """Whether a member's path would leave the archive's folder (zip-slip)."""
    path = PurePosixPath(name.replace("\\", "/"))
    if not path.parts or path.is_absolute():
        return True
    return ".." in path.parts or ":" in path.parts[0]


def _from_npz(data: bytes, max_expanded_bytes: int, convert: bool) -> UploadedArrays:
    _members(data, max_expanded_bytes)  # the size and path checks of any zip
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as stored:
            arrays = {name: stored[name] for name in stored.files}
    except (ValueError, OSError, zipfile.BadZipFile) as exc:
        raise refuse(f"the .npz cannot be read ({exc})") from None
    missing = {"x_train", "y_train"} - set(arrays)
    if missing:
        raise refuse(f"the .npz lacks {', '.join(sorted(missing))}")
    return _checked(arrays, convert)


def _from_idx(files: Mapping[str, bytes], max_expanded_bytes: int) -> UploadedArrays:
    arrays, budget = {}, max_expanded_bytes
    try:
        for name, data in files.items():
            arrays[idx_part(name) or ""] = array = parse_idx(data, name, budget)
            budget -= array.nbytes
    except IdxExpandsTooFar as exc:
        raise refuse(str(exc), "too_large") from None
    except IdxError as exc:
        raise refuse(str(exc)) from None
    if {"x_train", "y_train"} - set(arrays):
        raise refuse("the IDX upload needs at least the training images and labels")
    return _checked(arrays, convert=False)


def _from_zip(data: bytes, max_expanded_bytes: int, convert: bool) -> UploadedArrays:
    members = _members(data, max_expanded_bytes)
    csvs = [name for name in members if PurePosixPath(name).name == "train.csv"]
    if csvs:
        return _from_csv_layout(members, PurePosixPath(csvs[0]).parent, convert)
    folders = class_folders(members)
    if folders is not None:
        return _from_class_folders(members, folders, convert)
    idx = {name: content for name, content in members.items() if idx_part(name)}
    if idx:
        return _from_idx(idx, max_expanded_bytes)
    raise refuse("the zip holds neither train.csv, nor train/<class>/ folders of images, nor IDX files")


def _from_class_folders(
    members: Mapping[str, bytes], folders: Mapping[str, Mapping[str, list[str]]], convert: bool
) -> UploadedArrays:
    """Images in ``train/<class>/`` (and ``test/<class>/``) folders, labelled by their folder's name."""
    arrays: dict[str, npt.NDArray[np.generic]] = {}
    form: ImageForm | None = None
    problems: list[str] = []
    for part, classes in folders.items():
        images, labels = [], []
        for name, paths in classes.items():
            for path in paths:
                try:
                    image, form = _decode(members[path], path, convert, form)
                except ValueError as exc:
                    problems.append(str(exc))
                    continue
                images.append(image)
                labels.append(name)
        if images:
            arrays[f"x_{part}"], arrays[f"y_{part}"] = np.stack(images), np.array(labels, dtype=np.str_)
    if problems:
        raise refuse(_listed(problems))
    return _checked(arrays, convert)


def _listed(problems: list[str]) -> str:
    """The first ten problems, and how many more."""
    more = f"; and {len(problems) - 10} more" if len(problems) > 10 else ""
    return "; ".join(problems[:10]) + more


def _from_csv_layout(members: Mapping[str, bytes], root: PurePosixPath, convert: bool) -> UploadedArrays:
    arrays: dict[str, npt.NDArray[np.generic]] = {}
    for part, csv_name in (("train", "train.csv"), ("test", "test.csv")):
        key = str(root / csv_name) if str(root) != "." else csv_name
        if key in members:
            arrays[f"x_{part}"], arrays[f"y_{part}"] = _images_from_csv(members, root, key, convert)
    return _checked(arrays, convert)


def _images_from_csv(
    members: Mapping[str, bytes], root: PurePosixPath, key: str, convert: bool
) -> tuple[Array, npt.NDArray[np.int64]]:
    try:
        rows = list(csv.DictReader(io.StringIO(members[key].decode("utf-8"))))
    except (UnicodeDecodeError, csv.Error) as exc:
        raise refuse(f"{key} cannot be read ({exc})") from None
    if not rows or {"filename", "label"} - set(rows[0]):
        raise refuse(f"{key} needs filename,label columns and at least one row")
    images, labels, problems = [], [], []
    form: ImageForm | None = None
    for number, entry in enumerate(rows, start=2):
        path = str(root / entry["filename"]) if str(root) != "." else entry["filename"]
        if _escapes(entry["filename"] or "") or path not in members:
            problems.append(f"{key} line {number}: no file {entry['filename']!r}")
            continue
        try:
            image, form = _decode(members[path], path, convert, form)
            images.append(image)
            labels.append(int(entry["label"]))
        except ValueError as exc:
            problems.append(f"{key} line {number}: {exc}")
    if problems:
        raise refuse(_listed(problems))
    return np.stack(images), np.array(labels)


ImageForm = tuple[str, tuple[int, int]]
"""An image's mode (``L`` or ``RGB``) and size (width, height)."""


def _decode(data: bytes, path: str, convert: bool, first: ImageForm | None) -> tuple[Array, ImageForm]:
    """One image as (H, W) grayscale or (H, W, 3) colour pixels, in the form of the upload's first
    image (``first``; None for the first itself). Its size is checked from its header, before
    anything is decoded. With ``convert``, an image of another size is resized to the first's,
    and a colour image among grayscale ones made grayscale; a grayscale image among colour ones is
    always made colour (nothing is lost)."""
    try:
        image = Image.open(io.BytesIO(data))
    except (UnidentifiedImageError, OSError) as exc:
        raise ValueError(f"{path} is not an image that can be decoded ({type(exc).__name__})") from None
    width, height = image.size
    if not all(MIN_IMAGE_SIDE <= side <= MAX_IMAGE_SIDE for side in (width, height)):
        raise ValueError(
            f"{path} is {width}x{height}: height and width go from {MIN_IMAGE_SIDE} to {MAX_IMAGE_SIDE}"
        )
    mode = "L" if image.mode in ("1", "L", "LA", "I", "I;16") else "RGB"
    target_mode, target_size = first or (mode, image.size)
    if image.size != target_size and not convert:
        raise ValueError(
            f"{path} is {width}x{height}, the first image {target_size[0]}x{target_size[1]} "
            "(convert=true resizes every image to the first's size)"
        )
    if mode == "RGB" and target_mode == "L" and not convert:
        raise ValueError(f"{path} is in colour among grayscale images (convert=true makes it grayscale)")
    try:
        image.load()
        converted = image.convert(target_mode)
        if converted.size != target_size:
            converted = converted.resize(target_size)
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path} is not an image that can be decoded ({type(exc).__name__})") from None
    return np.asarray(converted, dtype=np.uint8), (target_mode, target_size)


def _checked(
    arrays: Mapping[str, npt.NDArray[np.generic]], convert: bool, column_names: list[str] | None = None
) -> UploadedArrays:
    x_train = _samples(arrays["x_train"], "x_train", convert)
    has_test = "x_test" in arrays and "y_test" in arrays
    x_test = _samples(arrays["x_test"], "x_test", convert) if has_test else None
    if x_test is not None and x_test.shape[1:] != x_train.shape[1:]:
        raise refuse(f"x_test's samples are {x_test.shape[1:]}, x_train's {x_train.shape[1:]}")
    y_train, y_test, names = _labels(arrays["y_train"], arrays["y_test"] if has_test else None)
    _match(x_train, y_train, "train")
    if x_test is not None and y_test is not None:
        _match(x_test, y_test, "test")
        return UploadedArrays(x_train, y_train, x_test, y_test, False, names, column_names)
    # No test set: the last tenth of the training samples becomes it, so every job can be tested.
    cut = len(x_train) - max(1, len(x_train) // 10)
    return UploadedArrays(
        x_train[:cut], y_train[:cut], x_train[cut:], y_train[cut:], True, names, column_names
    )


def _samples(array: npt.NDArray[np.generic], name: str, convert: bool) -> Array:
    """Images (N, H, W) or (N, H, W, C) with C 1 or 3, as uint8; or feature vectors (N, F) as float32."""
    if array.ndim == 2:
        return _features(array, name)
    if array.ndim not in (3, 4) or (array.ndim == 4 and array.shape[-1] not in (1, 3)):
        raise refuse(
            f"{name} has shape {array.shape}: send images as (N, height, width) or (N, height, width, "
            "channels) with 1 or 3 channels, or feature vectors as (N, features)"
        )
    height, width = array.shape[1:3]
    if not all(MIN_IMAGE_SIDE <= side <= MAX_IMAGE_SIDE for side in (height, width)):
        raise refuse(
            f"{name}'s images are {height}x{width}: height and width go from {MIN_IMAGE_SIDE} to "
            f"{MAX_IMAGE_SIDE}"
        )
    if array.dtype == np.uint8:
        return array
    if (
        convert
        and np.issubdtype(array.dtype, np.floating)
        and float(array.min()) >= 0
        and float(array.max()) <= 1
    ):
        return np.round(np.asarray(array, dtype=np.float64) * 255).astype(np.uint8)
    raise refuse(f"{name} is {array.dtype}; send uint8 pixels (or floats in [0, 1] with convert=true)")


def _features(array: npt.NDArray[np.generic], name: str) -> Array:
    if not (np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)):
        raise refuse(f"{name} is {array.dtype}; feature vectors must be numbers")
    if not 1 <= array.shape[1] <= MAX_FEATURES:
        raise refuse(f"{name} has {array.shape[1]} features; from 1 to {MAX_FEATURES} are allowed")
    features = array.astype(np.float32)
    if not np.isfinite(features).all():
        row, column = (int(i) for i in np.argwhere(~np.isfinite(features))[0])
        raise refuse(f"{name} row {row} column {column} is not a finite number")
    return features


def _labels(
    train: npt.NDArray[np.generic], test: npt.NDArray[np.generic] | None
) -> tuple[Array, Array | None, list[str] | None]:
    """Class indices 0..K-1 (integers, or names mapped to indices in sorted order) or float32
    targets (N, T), for both parts alike; the classes' names when they were names."""
    parts = [("y_train", train)] + ([("y_test", test)] if test is not None else [])
    for name, array in parts:
        if array.ndim not in (1, 2) or (array.ndim == 2 and not np.issubdtype(array.dtype, np.floating)):
            raise refuse(f"{name} must be 1-D labels (or 2-D float targets), not {array.dtype} {array.shape}")
    if train.dtype.kind in "US":
        names = sorted({str(label) for _, array in parts for label in array})
        if not MIN_CLASSES <= len(names) <= MAX_CLASSES:
            raise refuse(
                f"y_train names {len(names)} classes; from {MIN_CLASSES} to {MAX_CLASSES} are allowed"
            )
        index = {label: number for number, label in enumerate(names)}
        coded = [np.array([index[str(label)] for label in array], dtype=np.int32) for _, array in parts]
        return coded[0], coded[1] if test is not None else None, names
    if np.issubdtype(train.dtype, np.floating):
        targets = [np.asarray(array, dtype=np.float32).reshape(len(array), -1) for _, array in parts]
        if targets[0].shape[1] > MAX_TARGETS or any(t.shape[1] != targets[0].shape[1] for t in targets):
            raise refuse(f"targets must be the same 1 to {MAX_TARGETS} columns in train and test")
        if not all(np.isfinite(t).all() for t in targets):
            raise refuse("targets must be finite numbers")
        return targets[0], targets[1] if test is not None else None, None
    for name, array in parts:
        if not np.issubdtype(array.dtype, np.integer):
            raise refuse(f"{name} is {array.dtype}; y_train's labels are integers")
    highest = max(int(array.max()) for _, array in parts if array.size)
    lowest = min(int(array.min()) for _, array in parts if array.size)
    if lowest < 0 or not MIN_CLASSES <= highest + 1 <= MAX_CLASSES:
        raise refuse(
            f"labels go from {lowest} to {highest}; classes are 0 to K-1, "
            f"K from {MIN_CLASSES} to {MAX_CLASSES}"
        )
    coded = [array.astype(np.int32) for _, array in parts]
    return coded[0], coded[1] if test is not None else None, None


def _match(images: Array, labels: Array, part: str) -> None:
    if len(images) != len(labels):
        raise refuse(f"{part}: {len(images)} images but {len(labels)} labels")
    if part == "train" and len(images) < MIN_SAMPLES:
        raise refuse(f"train: {len(images)} samples; at least {MIN_SAMPLES} are needed")
