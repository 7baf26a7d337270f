"""Strict reading of a safetensors header: 8-byte length, JSON, then the byte layout it promises.

Only the header is read. Every number in it is checked against the file size before anything is
trusted, so a truncated file or a header that lies about offsets is refused with one line.
"""

from __future__ import annotations

import json
import os
import stat
import struct
from math import prod
from pathlib import Path

from ..errors import LayerscopeError, choices_text
from .entries import TensorEntry

# Bytes per element of every safetensors dtype with a whole number of bytes.
DTYPE_SIZES = {
    "BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1, "F8_E8M0": 1,
    "I16": 2, "U16": 2, "F16": 2, "BF16": 2,
    "I32": 4, "U32": 4, "F32": 4, "C64": 8,
    "I64": 8, "U64": 8, "F64": 8,
}  # fmt: skip
MAX_HEADER_BYTES = 100 * 1024 * 1024
_LIMIT = 2**64  # safetensors sizes and offsets are u64


def read_safetensors_header(path: str | os.PathLike, label: str | None = None) -> tuple[list[TensorEntry], dict]:
    """The tensors listed in a ``.safetensors`` file's header, in file order, and its ``__metadata__``.

    Args:
        path: the file.
        label: the file name recorded in each entry (default: the file's name).

    Example:
        >>> entries, metadata = read_safetensors_header("model.safetensors")
        >>> entries[0].name, entries[0].shape, entries[0].dtype
        ('model.embed_tokens.weight', (262144, 640), 'BF16')
    """
    path = Path(path)
    label = label or path.name
    size = regular_file_size(path, label)
    with open(path, "rb") as handle:
        head = handle.read(8)
        if len(head) < 8:
            raise LayerscopeError(
                f"{label}: not a safetensors file: {size} bytes, shorter than the 8-byte header length"
            )
        (length,) = struct.unpack("<Q", head)
        if length > MAX_HEADER_BYTES or 8 + length > size:
            raise LayerscopeError(
                f"{label}: header length {length} does not fit: the file has {size} bytes "
                f"(truncated, or not a safetensors file)"
            )
        raw = handle.read(length)
    try:
        header = json.loads(raw.decode("utf-8"))
    except (ValueError, RecursionError) as exc:  # bad UTF-8 or JSON, an integer too long, nesting too deep
        raise LayerscopeError(f"{label}: the safetensors header is not valid JSON ({exc})") from None
    if not isinstance(header, dict):
        raise LayerscopeError(f"{label}: the safetensors header is a JSON {type(header).__name__}, expected an object")
    metadata = header.pop("__metadata__", None)
    metadata = {} if metadata is None else metadata
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise LayerscopeError(f"{label}: __metadata__ must be an object of strings")
    data_size = size - 8 - length
    entries = [_entry(label, name, info, 8 + length) for name, info in header.items()]
    _check_offsets(label, header, data_size)
    return entries, metadata


def regular_file_size(path: Path, label: str) -> int:
    """The size of ``path``; a FIFO, socket or device is refused before it is opened (it could block forever)."""
    try:
        info = path.stat()
    except OSError as exc:
        raise LayerscopeError(f"{label}: cannot open it ({exc.strerror or exc})") from None
    if not stat.S_ISREG(info.st_mode):
        raise LayerscopeError(f"{label}: not a regular file (refused)")
    return info.st_size


def _entry(label: str, name: str, info: object, data_start: int) -> TensorEntry:
    if not isinstance(info, dict):
        raise LayerscopeError(f"{label}: tensor {name!r}: expected an object with dtype, shape, data_offsets")
    dtype, shape, offsets = info.get("dtype"), info.get("shape"), info.get("data_offsets")
    if dtype not in DTYPE_SIZES:
        raise LayerscopeError(
            f"{label}: tensor {name!r} has unknown dtype {dtype!r}; valid: {choices_text(DTYPE_SIZES)}"
        )
    if not isinstance(shape, list) or not all(_is_count(d) for d in shape):
        raise LayerscopeError(
            f"{label}: tensor {name!r} has shape {_brief(shape)}; expected a list of non-negative integers below 2**64"
        )
    if not (isinstance(offsets, list) and len(offsets) == 2 and all(_is_count(o) for o in offsets)):
        raise LayerscopeError(
            f"{label}: tensor {name!r} has data_offsets {_brief(offsets)}; expected [begin, end] below 2**64"
        )
    begin, end = offsets
    expected = prod(shape) * DTYPE_SIZES[dtype]
    if expected >= _LIMIT:
        raise LayerscopeError(
            f"{label}: tensor {name!r} has shape {_brief(shape)} of {dtype}: it needs more than 2**64 bytes"
        )
    if end < begin or end - begin != expected:
        raise LayerscopeError(
            f"{label}: tensor {name!r} has data_offsets [{begin}, {end}] ({end - begin} bytes) "
            f"but shape {shape} of {dtype} needs {expected} bytes"
        )
    return TensorEntry(
        name=name, shape=tuple(shape), dtype=dtype, nbytes=expected, file=label, offset=data_start + begin
    )


def _check_offsets(label: str, header: dict, data_size: int) -> None:
    """Tensors must tile the data section exactly: no overlap, no gap, nothing past the end."""
    spans = sorted((info["data_offsets"][0], info["data_offsets"][1], name) for name, info in header.items())
    position = 0
    for begin, end, name in spans:
        if begin != position:
            what = "overlaps the tensor before it" if begin < position else f"leaves a gap after byte {position}"
            raise LayerscopeError(f"{label}: tensor {name!r} at data_offsets [{begin}, {end}] {what}")
        position = end
    if position != data_size:
        state = "truncated" if position > data_size else "has trailing bytes"
        raise LayerscopeError(
            f"{label}: the header promises {position} bytes of tensor data but the file holds {data_size} ({state})"
        )


def _is_count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < _LIMIT


def _brief(value: object) -> str:
    """``repr`` cut to 80 characters (an integer too long to print is named as such)."""
    try:
        text = repr(value)
    except ValueError:  # an integer past Python's 4300-digit conversion limit
        return "(a number too long to print)"
    return text if len(text) <= 80 else text[:77] + "..."
