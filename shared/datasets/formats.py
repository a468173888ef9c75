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

import numpy as np
import numpy.typing as npt
from PIL import Image, UnidentifiedImageError

from shared.datasets.idx import IdxError, idx_part, parse_idx
from shared.errors import FieldError, SpecInvalid
from shared.models.spec import IMAGE_SHAPE, NUM_CLASSES

Array = npt.NDArray[np.uint8]
MIN_SAMPLES = 20


@dataclass(frozen=True)
class UploadedArrays:
    x_train: Array
    y_train: Array
    x_test: Array
    y_test: Array
    test_held_out: bool


def refuse(message: str, kind: str = "invalid_dataset") -> SpecInvalid:
    """The 422 of a bad upload: the field is the uploaded ``file``."""
    return SpecInvalid([FieldError("file", message, kind)])


def read_upload(files: Mapping[str, bytes], convert: bool, max_expanded_bytes: int) -> UploadedArrays:
    """The arrays of an upload (file name to content), checked; ``SpecInvalid`` says what is wrong."""
    if len(files) == 1:
        ((name, data),) = files.items()
        if name.endswith(".npz"):
            return _from_npz(data, max_expanded_bytes, convert)
        if name.endswith(".zip"):
            return _from_zip(data, max_expanded_bytes, convert)
    if files and all(idx_part(name) for name in files):
        return _from_idx(files)
    raise refuse("upload an .npz, a .zip, or the four IDX files (train/t10k images and labels)")


def _members(data: bytes, max_expanded_bytes: int) -> dict[str, bytes]:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        infos = [info for info in archive.infolist() if not info.is_dir()]
    except (zipfile.BadZipFile, ValueError) as exc:
        raise refuse(f"the archive cannot be read ({exc})") from None
    escaping = [info.filename for info in infos if _escapes(info.filename)]
    if escaping:
        raise refuse(f"paths leave the archive's folder: {', '.join(escaping[:5])}", "unsafe_path")
    if sum(info.file_size for info in infos) > max_expanded_bytes:
        raise refuse(f"the archive expands past {max_expanded_bytes} bytes", "too_large")
    try:
        return {info.filename: archive.read(info) for info in infos}
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise refuse(f"the archive cannot be read ({exc})") from None


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


def _from_idx(files: Mapping[str, bytes]) -> UploadedArrays:
    try:
        arrays = {idx_part(name) or "": parse_idx(data, name) for name, data in files.items()}
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
    idx = {name: content for name, content in members.items() if idx_part(name)}
    if idx:
        return _from_idx(idx)
    raise refuse("the zip holds neither train.csv nor IDX files")


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
    for number, entry in enumerate(rows, start=2):
        path = str(root / entry["filename"]) if str(root) != "." else entry["filename"]
        if _escapes(entry["filename"] or "") or path not in members:
            problems.append(f"{key} line {number}: no file {entry['filename']!r}")
            continue
        try:
            images.append(_decode(members[path], path, convert))
            labels.append(int(entry["label"]))
        except ValueError as exc:
            problems.append(f"{key} line {number}: {exc}")
    if problems:
        raise refuse(
            "; ".join(problems[:10]) + (f"; and {len(problems) - 10} more" if len(problems) > 10 else "")
        )
    return np.stack(images), np.array(labels)


def _decode(data: bytes, path: str, convert: bool) -> Array:
    try:
        image = Image.open(io.BytesIO(data))
        image.load()
    except (UnidentifiedImageError, OSError) as exc:
        raise ValueError(f"{path} is not an image that can be decoded ({type(exc).__name__})") from None
    if image.mode != "L" or image.size != IMAGE_SHAPE[::-1]:
        if not convert:
            raise ValueError(
                f"{path} is {image.mode} {image.size[0]}x{image.size[1]}, not 28x28 grayscale (L)"
            )
        return np.asarray(image.convert("L").resize(IMAGE_SHAPE[::-1]), dtype=np.uint8)
    return np.asarray(image, dtype=np.uint8)


def _checked(arrays: Mapping[str, npt.NDArray[np.generic]], convert: bool) -> UploadedArrays:
    x_train, y_train = _images(arrays["x_train"], "x_train", convert), _labels(arrays["y_train"], "y_train")
    _match(x_train, y_train, "train")
    if "x_test" in arrays and "y_test" in arrays:
        x_test, y_test = _images(arrays["x_test"], "x_test", convert), _labels(arrays["y_test"], "y_test")
        _match(x_test, y_test, "test")
        return UploadedArrays(x_train, y_train, x_test, y_test, test_held_out=False)
    # No test set: the last tenth of the training samples becomes it, so every job can be tested.
    cut = len(x_train) - max(1, len(x_train) // 10)
    return UploadedArrays(x_train[:cut], y_train[:cut], x_train[cut:], y_train[cut:], test_held_out=True)


def _images(array: npt.NDArray[np.generic], name: str, convert: bool) -> Array:
    if array.ndim == 4 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim != 3 or array.shape[1:] != IMAGE_SHAPE:
        raise refuse(f"{name} has shape {array.shape}; images must be (N, 28, 28)")
    if array.dtype == np.uint8:
        return array.astype(np.uint8)
    if (
        convert
        and np.issubdtype(array.dtype, np.floating)
        and float(array.min()) >= 0
        and float(array.max()) <= 1
    ):
        return np.round(np.asarray(array, dtype=np.float64) * 255).astype(np.uint8)
    raise refuse(f"{name} is {array.dtype}; send uint8 pixels (or floats in [0, 1] with convert=true)")


def _labels(array: npt.NDArray[np.generic], name: str) -> Array:
    if array.ndim != 1 or not np.issubdtype(array.dtype, np.integer):
        raise refuse(f"{name} must be a 1-D array of integer labels, not {array.dtype} {array.shape}")
    if array.size and (int(array.min()) < 0 or int(array.max()) >= NUM_CLASSES):
        raise refuse(f"{name} has labels from {int(array.min())} to {int(array.max())}; classes are 0-9")
    return array.astype(np.uint8)


def _match(images: Array, labels: Array, part: str) -> None:
    if len(images) != len(labels):
        raise refuse(f"{part}: {len(images)} images but {len(labels)} labels")
    if part == "train" and len(images) < MIN_SAMPLES:
        raise refuse(f"train: {len(images)} samples; at least {MIN_SAMPLES} are needed")
