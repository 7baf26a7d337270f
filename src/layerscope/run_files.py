"""Bounded reading of a run directory's files: the one reader behind ``load_run``, ``report`` and ``from_files``.

A run directory may be hostile (copied from elsewhere, edited by hand, crafted). Whatever it holds, reading it
ends in a result or one :class:`LayerscopeError` line, never a hang, a crash or a memory blow-up:

- only regular files directly inside the directory are opened (a link that leads out of it is refused; a FIFO,
  socket or device is refused from its listing and again, race-free, after ``open(O_NOFOLLOW | O_NONBLOCK)``
  by ``fstat``); where the bytes are shown to others (the report), a file with several hard links is refused
  too, since it may be a file from anywhere;
- each file has a size cap, and all the bytes one reader takes into memory share a total :class:`ReadBudget`;
- JSON is parsed with its nesting (:data:`MAX_JSON_DEPTH`) and integers (:data:`MAX_INT_DIGITS`) bounded;
- ``.npy`` arrays are memory-mapped only when the shape and dtype their header declares fill the file exactly;
  ``.npz`` members likewise, their declared sizes counted against the budget before anything is decompressed.

Example:
    >>> files = RunFiles("runs/digits", budget=ReadBudget(LOAD_BUDGET_BYTES))
    >>> record = files.json("run.json")
    >>> embeddings = files.array("embeddings.npy")      # (n_words, d_model) float32, memory-mapped read-only
"""

from __future__ import annotations

import io
import json
import math
import os
import stat
import tokenize
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from .errors import LayerscopeError

#: the largest JSON file read (run.json, phases.json, a figure spec): real ones are kilobytes to a few megabytes
MAX_JSON_BYTES = 64 << 20
#: deeper than any real record, config or figure spec (they nest a handful of levels)
MAX_JSON_DEPTH = 32
#: the most digits a JSON integer may have (2**64 has 20; Python refuses past 4300 and floats overflow past 308)
MAX_INT_DIGITS = 40
#: more columns than any table a run writes (pandas takes minutes over a header of millions)
MAX_CSV_COLUMNS = 10_000
#: what ``load_run`` takes into memory from one run directory (CSV, JSON, ``.npz``; ``.npy`` is memory-mapped)
LOAD_BUDGET_BYTES = 256 << 20

_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)


class ReadBudget:
    """The bytes one reader (a ``load_run``, a report) may still take into memory; shared by its files."""

    def __init__(self, total: int, hint: str = ""):
        self.total = total
        self.used = 0
        self.hint = hint  # how to read more, added to the refusal

    @property
    def left(self) -> int:
        return max(self.total - self.used, 0)

    def take(self, n: int, label: str) -> None:
        """Count ``n`` bytes against the budget; refuse them (one line) when they do not fit."""
        if n > self.left:
            raise LayerscopeError(
                f"{label}: {_size_text(n)} would pass the {_size_text(self.total)} read budget "
                f"({_size_text(self.used)} already read); not read{self.hint}"
            )
        self.used += n


class RunFiles:
    """The regular files directly inside one run directory, read within caps and a shared budget.

    Args:
        run_dir: the directory.
        budget: shared by every read (default: a fresh :data:`LOAD_BUDGET_BYTES`).
        single_link: refuse files with more than one hard link (for bytes shown to others, as the report does).
    """

    def __init__(self, run_dir: str | os.PathLike, *, budget: ReadBudget | None = None, single_link: bool = False):
        self.run_dir = Path(run_dir)
        self.budget = budget if budget is not None else ReadBudget(LOAD_BUDGET_BYTES)
        self.single_link = single_link
        self.files: dict[str, str] = {}  # name -> real path of a regular file inside the directory
        self.refused: dict[str, str] = {}  # name -> why it is not read
        try:
            root = os.path.realpath(self.run_dir)
            entries = sorted(os.scandir(self.run_dir), key=lambda e: e.name)
        except (OSError, ValueError) as exc:
            raise LayerscopeError(f"cannot read the run directory {str(self.run_dir)!r}: {_reason(exc)}") from None
        for entry in entries:
            try:
                real = os.path.realpath(entry.path)
                if entry.is_symlink() and os.path.commonpath([root, real]) != root:
                    self.refused[entry.name] = "a link that leads out of the run directory"
                    continue
                mode = os.stat(real).st_mode
            except (OSError, ValueError) as exc:
                self.refused[entry.name] = f"cannot be read ({_reason(exc)})"
                continue
            if stat.S_ISDIR(mode):
                continue  # layers/, parts/: folders of the run, read by no one here
            if not stat.S_ISREG(mode):
                self.refused[entry.name] = "not a regular file"
                continue
            self.files[entry.name] = real

    def label(self, name: str) -> str:
        return repr(str(self.run_dir / name))

    def named(self, suffix: str) -> list[str]:
        """The readable files whose names end in ``suffix`` (and are longer than it)."""
        return [name for name in self.files if name.endswith(suffix) and len(name) > len(suffix)]

    def _fd(self, name: str) -> tuple[int, os.stat_result]:
        real = self.files.get(name)
        if real is None:
            raise LayerscopeError(f"{self.label(name)}: {self.refused.get(name, 'no such file')}")
        try:
            fd = os.open(real, _OPEN_FLAGS)
        except (OSError, ValueError) as exc:
            raise LayerscopeError(f"{self.label(name)}: cannot be read ({_reason(exc)})") from None
        info = os.fstat(fd)
        why = None
        if not stat.S_ISREG(info.st_mode):  # swapped for something else since the listing
            why = "not a regular file"
        elif self.single_link and info.st_nlink > 1:
            why = f"a file with {info.st_nlink} hard links (it may be a file from outside the run directory)"
        if why is not None:
            os.close(fd)
            raise LayerscopeError(f"{self.label(name)}: {why}")
        return fd, info

    def read(self, name: str, limit: int | None = None, *, head: bool = False) -> bytes:
        """The bytes of ``name``, counted against the budget: at most ``limit`` (default: what the budget has
        left); a larger file is refused, or with ``head`` cut to its first ``limit`` bytes."""
        fd, info = self._fd(name)
        try:
            if limit is not None and info.st_size > limit and not head:
                raise LayerscopeError(
                    f"{self.label(name)}: {_size_text(info.st_size)}, over the {_size_text(limit)} cap"
                )
            limit = self.budget.left if limit is None else limit
            self.budget.take(min(info.st_size, limit) if head else info.st_size, self.label(name))
            with os.fdopen(fd, "rb", closefd=False) as handle:
                data = handle.read(limit + 1)
        except OSError as exc:
            raise LayerscopeError(f"{self.label(name)}: cannot be read ({_reason(exc)})") from None
        finally:
            os.close(fd)
        if len(data) > info.st_size and not head:  # it grew since fstat
            raise LayerscopeError(f"{self.label(name)}: grew while it was read; not read")
        return data[:limit]

    def json(self, name: str, *, constants: Callable[[str], object] | None = None) -> object:
        """``name`` parsed as JSON (at most :data:`MAX_JSON_BYTES`, nesting and integers bounded)."""
        return parse_json(self.read(name, MAX_JSON_BYTES), self.label(name), constants=constants)

    def array(self, name: str):
        """``<stem>.npy`` memory-mapped read-only, or ``<stem>.npz`` as ``{member: array}`` (read in full)."""
        if name.endswith(".npz"):
            return self._npz(name)
        fd, info = self._fd(name)
        try:
            with os.fdopen(fd, "rb", closefd=False) as handle:
                shape, dtype, fortran = _npy_header(handle, info.st_size, self.label(name))
                offset = handle.tell()
                if math.prod(shape) == 0:
                    empty = np.empty(shape, dtype, order="F" if fortran else "C")
                    empty.flags.writeable = False
                    return empty
                return np.memmap(
                    handle, dtype=dtype, mode="r", offset=offset, shape=shape, order="F" if fortran else "C"
                )
        except (OSError, ValueError) as exc:  # e.g. no address space left for the mapping
            raise LayerscopeError(f"{self.label(name)}: cannot be mapped ({_reason(exc)})") from None
        finally:
            os.close(fd)

    def _npz(self, name: str) -> dict[str, np.ndarray]:
        label = self.label(name)
        data = self.read(name)
        arrays = {}
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                for info in archive.infolist():
                    member = f"{label} member {info.filename!r}"
                    if not info.filename.endswith(".npy"):
                        raise LayerscopeError(f"{member}: not an .npy array (an .npz holds only arrays)")
                    self.budget.take(info.file_size, member)
                    with archive.open(info) as handle:
                        shape, dtype, fortran = _npy_header(handle, info.file_size, member)
                        size = math.prod(shape) * dtype.itemsize
                        raw = handle.read(size)
                    array = np.frombuffer(raw, dtype=dtype, count=math.prod(shape))
                    arrays[info.filename[: -len(".npy")]] = array.reshape(shape, order="F" if fortran else "C")
        except LayerscopeError:
            raise
        except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, RuntimeError, EOFError, OSError,
                ValueError, UnicodeError) as exc:  # fmt: skip
            raise LayerscopeError(f"{label}: not a readable .npz archive ({_reason(exc)})") from None
        except Exception as exc:  # zlib, bz2 and lzma raise their own error types on corrupt data
            if type(exc).__module__ not in ("zlib", "_lzma", "lzma", "_bz2", "bz2"):
                raise
            raise LayerscopeError(f"{label}: not a readable .npz archive ({_reason(exc)})") from None
        return arrays


def _npy_header(handle, size: int, label: str) -> tuple[tuple[int, ...], np.dtype, bool]:
    """The shape, dtype and order an ``.npy`` header declares, checked against the ``size`` bytes it came with."""
    from numpy.lib import format as npy

    try:
        version = npy.read_magic(handle)
        if version == (1, 0):
            shape, fortran, dtype = npy.read_array_header_1_0(handle)
        elif version in ((2, 0), (3, 0)):
            reader = npy.read_array_header_2_0
            shape, fortran, dtype = reader(handle)
        else:
            raise ValueError(f"format version {version}")
    except (ValueError, SyntaxError, TypeError, KeyError, IndexError, AttributeError, EOFError, OSError, OverflowError,
            RecursionError, MemoryError, tokenize.TokenError) as exc:  # fmt: skip  # numpy parses headers with tokenize
        raise LayerscopeError(f"{label}: not a readable .npy array ({_reason(exc)})") from None
    if dtype.hasobject or dtype.itemsize == 0:
        raise LayerscopeError(f"{label}: holds {dtype}; only arrays of numbers (or fixed-size text) are read")
    if not all(isinstance(d, int) and d >= 0 for d in shape):
        raise LayerscopeError(f"{label}: declares shape {shape}; dimensions are whole numbers of at least 0")
    data = size - handle.tell()
    needed = math.prod(shape) * dtype.itemsize
    if needed != data:
        raise LayerscopeError(
            f"{label}: declares shape {shape} of {dtype} ({_size_text(needed)}) but holds {_size_text(max(data, 0))} "
            "of data (truncated or not written by layerscope)"
        )
    return shape, dtype, fortran


def check_csv_columns(data: bytes, label: str) -> None:
    """Refuse a CSV table whose header has more than :data:`MAX_CSV_COLUMNS` fields (commas counted)."""
    header = data.split(b"\n", 1)[0]
    if header.count(b",") >= MAX_CSV_COLUMNS:
        raise LayerscopeError(f"{label}: its header has more than {MAX_CSV_COLUMNS} columns; not read")


def parse_json(data: bytes, label: str, *, constants: Callable[[str], object] | None = None) -> object:
    """``data`` as JSON: UTF-8, at most :data:`MAX_JSON_DEPTH` levels, integers of at most :data:`MAX_INT_DIGITS`
    digits; anything else is one :class:`LayerscopeError` line naming ``label``.

    ``constants`` maps ``NaN``/``Infinity``/``-Infinity`` (default: Python's floats).
    """
    try:
        text = data.decode("utf-8")
        options = {} if constants is None else {"parse_constant": constants}
        value = json.loads(text, parse_int=_bounded_int, **options)
    except _LongInteger as exc:
        raise LayerscopeError(f"{label}: holds an integer of {exc.args[0]} digits; at most {MAX_INT_DIGITS}") from None
    except RecursionError:
        raise LayerscopeError(f"{label}: nested too deeply (more than {MAX_JSON_DEPTH} levels)") from None
    except ValueError as exc:  # bad UTF-8 or JSON
        raise LayerscopeError(f"{label}: not valid JSON ({_reason(exc)})") from None
    if json_depth(value) > MAX_JSON_DEPTH:
        raise LayerscopeError(f"{label}: nested too deeply (more than {MAX_JSON_DEPTH} levels)")
    return value


class _LongInteger(Exception):
    """An integer literal past :data:`MAX_INT_DIGITS` digits (its digit count in ``args[0]``)."""


def _bounded_int(text: str) -> int:
    digits = len(text) - text.startswith("-")
    if digits > MAX_INT_DIGITS:
        raise _LongInteger(digits)
    return int(text)


def json_depth(value: object) -> int:
    """How deeply lists and objects nest in a parsed JSON value (a scalar is 0)."""
    deepest, stack = 0, [(value, 0)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            node = list(node.values())
        if isinstance(node, list):
            deepest = max(deepest, depth + 1)
            stack.extend((child, depth + 1) for child in node if isinstance(child, (dict, list)))
    return deepest


def _size_text(n: int) -> str:
    if n < 1024:
        return f"{n} bytes"
    for unit in ("KiB", "MiB", "GiB", "TiB", "PiB", "EiB"):
        n /= 1024
        if n < 1024 or unit == "EiB":
            return f"{n:.1f} {unit}" if n < 1e6 else f"{n:.3g} {unit}"
    return f"{n} bytes"  # pragma: no cover


def _reason(exc: BaseException) -> str:
    """An exception as a short phrase on one line."""
    text = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    text = " ".join(str(text).split())
    return text if len(text) <= 160 else text[:160] + "..."
