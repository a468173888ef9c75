"""The IDX format of MNIST-style datasets, parsed from bytes with numpy in one pass."""

import zlib

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


CHUNK = 1 << 20
UNBOUNDED = 1 << 62


def parse_idx(data: bytes, name: str, max_bytes: int = UNBOUNDED) -> npt.NDArray[np.uint8]:
    """IDX bytes (gzipped or not, by their magic) as an array of the shape the header gives; a
    gzip is decompressed a chunk at a time, and refused as soon as it produces over ``max_bytes``."""
    if data[:2] == b"\x1f\x8b":
        data = gunzip(data, name, max_bytes)
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


def gunzip(data: bytes, name: str, max_bytes: int) -> bytes:
    """The gzip member ``data`` decompressed, counting what it produces against ``max_bytes``."""
    inflater, parts, produced, pending = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS), [], 0, data
    try:
        while not inflater.eof:
            part = inflater.decompress(pending, CHUNK)
            if not part and not inflater.unconsumed_tail and not inflater.eof:
                break  # no input left, and no output: the stream is cut short
            produced += len(part)
            if produced > max_bytes:
                raise IdxExpandsTooFar(f"{name} expands past {max_bytes} bytes")
            parts.append(part)
            pending = inflater.unconsumed_tail
    except zlib.error as exc:
        raise IdxError(f"{name} cannot be read ({exc})") from None
    if not inflater.eof:
        raise IdxError(f"{name} cannot be read (the gzip stream is cut short)")
    return b"".join(parts)


class IdxExpandsTooFar(IdxError):
    """A gzip that decompresses past its budget."""


def idx_part(filename: str) -> str | None:
    """Which part (``x_train``, ...) a file name holds, by its stem; None for another file."""
    base = filename.rsplit("/", 1)[-1].removesuffix(".gz")
    return next((part for part, stem in IDX_STEMS.items() if base == stem), None)
