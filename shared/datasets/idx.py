"""The IDX format of MNIST-style datasets, parsed from bytes with numpy in one pass."""

import gzip

import numpy as np
import numpy.typing as npt

IDX_STEMS = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}
_UNSIGNED_BYTE = 0x08


class IdxError(ValueError):
    """Bytes that are not an unsigned-byte IDX file."""


def parse_idx(data: bytes, name: str) -> npt.NDArray[np.uint8]:
    """IDX bytes (gzipped or not, by their magic) as an array of the shape the header gives."""
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as exc:
            raise IdxError(f"{name} cannot be read ({exc})") from None
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != _UNSIGNED_BYTE:
        raise IdxError(f"{name} is not an unsigned-byte IDX file")
    ndim = data[3]
    if len(data) < 4 + 4 * ndim:
        raise IdxError(f"{name}: the IDX header is cut short")
    shape = tuple(int(d) for d in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    offset = 4 + 4 * ndim
    if len(data) - offset != int(np.prod(shape)):
        raise IdxError(f"{name}: header says {shape}, file holds {len(data) - offset} bytes")
    return np.frombuffer(data, dtype=np.uint8, offset=offset).reshape(shape)


def idx_part(filename: str) -> str | None:
    """Which part (``x_train``, ...) a file name holds, by its stem; None for another file."""
    base = filename.rsplit("/", 1)[-1].removesuffix(".gz")
    return next((part for part, stem in IDX_STEMS.items() if base == stem), None)
