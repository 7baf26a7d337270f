"""Hostile checkpoint files: every header reader refuses with ``LayerscopeError`` or lists what the
``safetensors`` / ``gguf`` libraries list, in bounded time and memory (see tests/hostile_files.py).

``benchmarks/fuzz_readers.py`` runs the same properties on many more inputs.
"""

from __future__ import annotations

import struct

import pytest
from hostile_files import PROPERTIES, Stats, check_gguf, run_property, small_gguf

EXAMPLES = 150  # per property, so the file stays well under a minute


@pytest.mark.parametrize("name", sorted(PROPERTIES))
def test_reader_refuses_or_agrees_with_library(name):
    stats = Stats()
    run_property(name, max_examples=EXAMPLES, stats=stats)
    assert stats.tried[name] >= EXAMPLES // 2  # hypothesis may stop early only when it ran out of new inputs


def _gguf_field_ends(blob: bytes) -> tuple[list[int], int]:
    """Every byte offset where a field of the GGUF header ends, and where the last tensor's data ends
    (from gguf's own reader)."""
    import tempfile
    from pathlib import Path

    from gguf import GGUFReader

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "f.gguf"
        path.write_bytes(blob)
        reader = GGUFReader(str(path))
        ends = set()
        for f in [*reader.fields.values(), *(t.field for t in reader.tensors)]:
            for part in f.parts:
                ends.add(int(part.ctypes.data - reader.data.ctypes.data) + part.nbytes)
        return sorted(ends), max(int(t.data_offset) + int(t.n_bytes) for t in reader.tensors)


def test_gguf_truncated_at_every_field_boundary(tmp_path):
    """Cut the file at, one before and one after the end of every header field, and inside the data:
    refused until the cut leaves every tensor's bytes (only the final alignment padding may go)."""
    blob = small_gguf()
    field_ends, data_end = _gguf_field_ends(blob)
    cuts = {0, 4, 8, 16, 24, data_end - 1, data_end, len(blob) - 1, (data_end + field_ends[-1]) // 2}
    for end in field_ends:
        cuts.update({end - 1, end, end + 1})
    stats = Stats()
    import hostile_files

    hostile_files._STATS = stats
    cuts = sorted(c for c in cuts if 0 <= c < len(blob))
    for cut in cuts:
        path = tmp_path / f"cut{cut}.gguf"
        path.write_bytes(blob[:cut])
        check_gguf(path, "gguf_truncated")
    assert stats.total == len(cuts) > 30
    assert stats.refused == len([c for c in cuts if c < data_end])


def test_gguf_absurd_string_length(tmp_path):
    """The first key's length says 2**63 bytes: refused before anything of that size is allocated."""
    blob = bytearray(small_gguf())
    blob[24:32] = struct.pack("<Q", 2**63)
    path = tmp_path / "long.gguf"
    path.write_bytes(bytes(blob))
    from layerscope.checkpoints.gguf_header import read_gguf_header
    from layerscope.errors import LayerscopeError

    with pytest.raises(LayerscopeError, match="runs past the end of the file"):
        read_gguf_header(path)


@pytest.mark.parametrize("target", ["dir", "model.safetensors", "model.gguf"])
def test_a_fifo_is_refused_not_read(target, tmp_path):
    """A FIFO named like a checkpoint would block a reader forever: ``layout`` refuses it in one line."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    name = "model.gguf" if target == "model.gguf" else "model.safetensors"
    os.mkfifo(tmp_path / name)
    src = str(Path(__file__).resolve().parents[2] / "src")
    done = subprocess.run(
        [sys.executable, "-m", "layerscope", "layout", str(tmp_path if target == "dir" else tmp_path / name)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": src, "HF_HUB_OFFLINE": "1"},
    )
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1, done.stderr
    assert "not a regular file" in lines[0] and name in lines[0]
