"""Reading a GGUF file's header only: metadata scalars and the tensor table, with every count bounded.

``gguf.GGUFReader`` parses every metadata array into numpy objects (seconds for a 262k-token vocabulary);
this reader skips arrays and stops at the tensor table, so listing is fast. The type tables come from
the ``gguf`` package.
"""

from __future__ import annotations

import mmap
import os
import struct
from math import prod
from pathlib import Path

from gguf.constants import GGML_QUANT_SIZES, GGMLQuantizationType

from ..errors import LayerscopeError
from .entries import TensorEntry
from .safetensors_header import regular_file_size

_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}
_STRING, _ARRAY = 8, 9
_MAX_DIMS = 8


class _Cursor:
    def __init__(self, buffer, label: str):
        self.buffer, self.pos, self.label, self.size = buffer, 0, label, len(buffer)

    def take(self, fmt: str):
        width = struct.calcsize(fmt)
        if self.pos + width > self.size:
            raise LayerscopeError(f"{self.label}: the GGUF header ends early at byte {self.pos} (truncated file)")
        value = struct.unpack_from(fmt, self.buffer, self.pos)
        self.pos += width
        return value[0] if len(value) == 1 else value

    def skip(self, count: int, what: str) -> None:
        if count > self.size - self.pos:
            raise LayerscopeError(f"{self.label}: {what} of {count} bytes runs past the end of the file (truncated?)")
        self.pos += count

    def string(self, strict: bool = False) -> str:
        """A length-prefixed string; ``strict``: names must be valid UTF-8 (values are decoded leniently)."""
        length = self.take("<Q")
        start = self.pos
        self.skip(length, "a string")
        raw = bytes(self.buffer[start : self.pos])
        try:
            return raw.decode("utf-8", errors="strict" if strict else "replace")
        except UnicodeDecodeError:
            raise LayerscopeError(f"{self.label}: the name at byte {start} is not valid UTF-8 ({raw[:40]!r})") from None

    def value(self, kind: int):
        if kind in _SCALARS:
            return self.take(_SCALARS[kind])
        if kind == _STRING:
            return self.string()
        if kind == _ARRAY:
            inner, count = self.take("<I"), self.take("<Q")
            if inner in _SCALARS:
                self.skip(count * struct.calcsize(_SCALARS[inner]), "an array")
            elif inner == _STRING:
                if count * 8 > self.size - self.pos:
                    raise LayerscopeError(f"{self.label}: an array of {count} strings cannot fit in the file")
                for _ in range(count):
                    self.skip(self.take("<Q"), "a string")
            else:
                raise LayerscopeError(f"{self.label}: unsupported GGUF array element type {inner}")
            return None  # arrays are not kept: only scalars are reported
        raise LayerscopeError(f"{self.label}: unknown GGUF value type {kind} at byte {self.pos}")


def read_gguf_header(path: str | os.PathLike, label: str | None = None) -> tuple[list[TensorEntry], dict]:
    """The tensors of a ``.gguf`` file (numpy-order shapes, GGML type names) and its scalar metadata.

    Example:
        >>> entries, meta = read_gguf_header("gemma-3-270m-q4_k_m.gguf")
        >>> meta["general.architecture"], entries[0].dtype
        ('gemma3', 'F32')
    """
    entries, metadata, _ = _read(path, label)
    return entries, metadata


def read_gguf_tensor_table(path: str | os.PathLike, label: str | None = None) -> list[tuple[TensorEntry, int]]:
    """``(entry, byte offset of its data in the file)`` for every tensor of a ``.gguf`` file, in file order."""
    entries, _, offsets = _read(path, label)
    return list(zip(entries, offsets, strict=True))


def _read(path, label):
    path = Path(path)
    label = label or path.name
    size = regular_file_size(path, label)
    if size < 24:
        raise LayerscopeError(f"{label}: {size} bytes is too short for a GGUF file")
    with open(path, "rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as buffer:
        cursor = _Cursor(buffer, label)
        if cursor.take("<4s") != b"GGUF":
            raise LayerscopeError(f"{label}: not a GGUF file (it does not start with 'GGUF')")
        version = cursor.take("<I")
        if version not in (2, 3):
            raise LayerscopeError(f"{label}: GGUF version {version} is not supported; valid: 2, 3")
        n_tensors, n_kv = cursor.take("<Q"), cursor.take("<Q")
        if n_kv * 12 > size or n_tensors * 24 > size:
            raise LayerscopeError(
                f"{label}: header claims {n_tensors} tensors and {n_kv} keys, too many for {size} bytes"
            )
        metadata = {}
        for _ in range(n_kv):
            key = cursor.string(strict=True)
            kind = cursor.take("<I")
            value = cursor.value(kind)
            if key == "general.alignment" and (kind != 4 or value <= 0 or value & (value - 1)):
                raise LayerscopeError(
                    f"{label}: general.alignment is {value!r} (type {kind}); valid: a uint32 power of two"
                )
            if value is not None:
                metadata[key] = value
        infos = [_tensor_info(cursor) for _ in range(n_tensors)]
        alignment = metadata.get("general.alignment", 32)
        data_start = -(-cursor.pos // alignment) * alignment
    entries = []
    for name, dims, kind, offset in infos:
        entries.append(_entry(label, name, dims, kind, offset, data_start, size))
    if len({e.name for e in entries}) != len(entries):
        raise LayerscopeError(f"{label}: the GGUF tensor table names a tensor twice")
    return entries, metadata, [data_start + offset for _, _, _, offset in infos]


def _tensor_info(cursor: _Cursor):
    name = cursor.string(strict=True)
    n_dims = cursor.take("<I")
    if n_dims > _MAX_DIMS:
        raise LayerscopeError(f"{cursor.label}: tensor {name!r} claims {n_dims} dimensions (at most {_MAX_DIMS})")
    dims = [cursor.take("<Q") for _ in range(n_dims)]
    return name, dims, cursor.take("<I"), cursor.take("<Q")


def _entry(label, name, dims, kind, offset, data_start, size) -> TensorEntry:
    try:
        qtype = GGMLQuantizationType(kind)
        block, type_size = GGML_QUANT_SIZES[qtype]
    except (ValueError, KeyError):
        raise LayerscopeError(f"{label}: tensor {name!r} has unknown GGML type {kind}") from None
    numel = prod(dims)
    if dims and dims[0] % block:
        raise LayerscopeError(
            f"{label}: tensor {name!r} row of {dims[0]} is not a multiple of {qtype.name}'s block {block}"
        )
    nbytes = numel * type_size // block
    if data_start + offset + nbytes > size:
        raise LayerscopeError(
            f"{label}: tensor {name!r} at offset {offset} ({nbytes} bytes) runs past the end of the file "
            f"({size} bytes; truncated?)"
        )
    return TensorEntry(name=name, shape=tuple(reversed(dims)), dtype=qtype.name, nbytes=nbytes, file=label)
