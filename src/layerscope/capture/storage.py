"""Where captured vectors go: a numpy array in RAM, or a memory-mapped ``.npy`` file past a budget.

Example:
    >>> result = allocate((19, 117, 640), memory_budget=1 << 20)   # 5.7 MB > 1 MiB: on disk
    >>> isinstance(result, np.memmap)
    True
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

from ..cache import cache_root
from ..errors import LayerscopeError

DEFAULT_MEMORY_BUDGET = 2 << 30  # 2 GiB


def parse_budget(value: int | str | None) -> int:
    """Bytes from an int or a string such as ``"512MB"``, ``"2GiB"``, ``"1e6"``."""
    if value is None:
        return DEFAULT_MEMORY_BUDGET
    if isinstance(value, (int, np.integer)):
        budget = int(value)
    else:
        text = str(value).strip().lower().replace(" ", "")
        units = {"gib": 1 << 30, "mib": 1 << 20, "kib": 1 << 10, "gb": 10**9, "mb": 10**6, "kb": 10**3, "b": 1}
        factor = 1
        for suffix, size in units.items():
            if text.endswith(suffix):
                text, factor = text[: -len(suffix)], size
                break
        try:
            budget = int(float(text) * factor)  # inf and nan raise here too
        except (ValueError, OverflowError):
            raise LayerscopeError(
                f"memory budget {value!r} is not a size; give bytes or e.g. '512MB', '2GiB'"
            ) from None
    if budget < 0:
        raise LayerscopeError(f"memory budget {value!r} is negative; give a size of at least 0 bytes")
    return budget


def allocate(shape: tuple[int, ...], memory_budget: int, path: str | os.PathLike | None = None) -> np.ndarray:
    """A float32 array of ``shape``: in RAM when it fits ``memory_budget`` bytes, else a memmapped ``.npy``.

    With ``path`` the ``.npy`` file is kept there (written as ``<path>.part`` until :func:`finish` renames it);
    without it the file lives in the cache and is unlinked at once (the mapping stays valid, nothing is left
    behind). Chunks written into the memmap go to disk as the OS pages them out.
    """
    nbytes = int(np.prod(shape)) * 4
    if nbytes <= memory_budget and path is None:
        return np.zeros(shape, dtype=np.float32)
    if path is not None:
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        return np.lib.format.open_memmap(_part(target), mode="w+", dtype=np.float32, shape=shape)
    folder = cache_root() / "capture"
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix="residuals.", suffix=".npy", dir=folder)
    os.close(fd)
    try:
        array = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=shape)
    finally:
        os.unlink(tmp)
    return array


def finish(array: np.ndarray, path: str | os.PathLike | None) -> np.ndarray:
    """Flush a memmap; with ``path`` rename ``<path>.part`` onto ``path`` (the mapping stays valid)."""
    if isinstance(array, np.memmap):
        array.flush()
    if path is not None:
        os.replace(_part(Path(path)), path)
    return array


def discard(path: str | os.PathLike | None) -> None:
    """Remove a half-written ``<path>.part`` after a failure."""
    if path is not None and _part(Path(path)).exists():
        _part(Path(path)).unlink()


def _part(path: Path) -> Path:
    return path.with_name(path.name + ".part")
