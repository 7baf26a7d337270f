"""The GGUF cache's tensor-by-tensor conversion against transformers' whole-model one (the oracle)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from tiny_gguf import write_tiny_gguf

from layerscope.models import gguf_cache


def _tensors(directory: Path) -> dict[str, torch.Tensor]:
    index = directory / "model.safetensors.index.json"
    files = sorted(set(json.loads(index.read_text())["weight_map"].values())) if index.is_file() else []
    tensors = {}
    for file in files or ["model.safetensors"]:
        tensors.update(load_file(directory / file))
    return tensors


def _assert_same(streamed: Path, oracle: Path) -> None:
    ours, theirs = _tensors(streamed), _tensors(oracle)
    assert sorted(ours) == sorted(theirs)
    for name, value in theirs.items():
        assert ours[name].dtype == value.dtype and torch.equal(ours[name], value), name
    for file in ("config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json"):
        assert json.loads((streamed / file).read_text()) == json.loads((oracle / file).read_text()), file


def _logits(directory: Path, ids: list[int]) -> torch.Tensor:
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(directory)
    with torch.no_grad():
        return model(torch.tensor([ids])).logits


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_tiny_gguf_streamed_equals_transformers_bit_for_bit(tmp_path, dtype):
    source = write_tiny_gguf(tmp_path / "tiny.gguf")
    streamed, oracle = tmp_path / "streamed", tmp_path / "oracle"
    streamed.mkdir(), oracle.mkdir()
    gguf_cache.convert_streaming(source, streamed, dtype)
    gguf_cache.convert_with_transformers(source, oracle, dtype)
    _assert_same(streamed, oracle)
    assert torch.equal(_logits(streamed, [1, 270, 280, 290]), _logits(oracle, [1, 270, 280, 290]))


def test_tiny_gguf_shards_and_index_like_save_pretrained(tmp_path):
    source = write_tiny_gguf(tmp_path / "tiny.gguf")
    single, sharded = tmp_path / "single", tmp_path / "sharded"
    single.mkdir(), sharded.mkdir()
    gguf_cache.convert_streaming(source, single, "float32")
    gguf_cache.convert_streaming(source, sharded, "float32", shard_bytes=40_000)  # a few tensors per shard
    index = json.loads((sharded / "model.safetensors.index.json").read_text())
    files = sorted(set(index["weight_map"].values()))
    assert len(files) > 2 and files[0] == f"model-00001-of-{len(files):05d}.safetensors"
    assert sorted(p.name for p in sharded.glob("*.safetensors")) == files  # no stray partial shard
    expected = _tensors(single)
    assert index["metadata"]["total_size"] == sum(t.numel() * t.element_size() for t in expected.values())
    got = _tensors(sharded)
    assert sorted(got) == sorted(expected) and all(torch.equal(got[k], v) for k, v in expected.items())
    assert torch.equal(_logits(sharded, [1, 260, 299]), _logits(single, [1, 260, 299]))


def test_architecture_transformers_converts_its_own_way_falls_back(tmp_path, monkeypatch, capsys):
    source = write_tiny_gguf(tmp_path / "tiny.gguf")
    calls = []
    monkeypatch.setattr("transformers.integrations.gguf.utils.is_gguf_arch_supported", lambda arch: True)
    monkeypatch.setattr(gguf_cache, "convert_with_transformers", lambda path, out, dtype: calls.append(dtype) or None)
    out = tmp_path / "out"
    out.mkdir()
    gguf_cache._convert(source, out, "bfloat16")
    assert calls == ["bfloat16"] and not list(out.iterdir())  # the streaming attempt left nothing behind


# VmHWM is this process's own peak: ru_maxrss would carry over the parent's (pytest's) peak across fork and exec.
_PEAK = """
import sys
from pathlib import Path
import torch, transformers, gguf, safetensors
from layerscope.models import gguf_cache
def hwm():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
base = hwm()
gguf_cache.convert_streaming(Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3])
print(base, hwm())
"""


def _convert_measured(source: Path, out: Path, dtype: str) -> tuple[int, int]:
    """Convert in a subprocess; its (peak RSS after imports, peak RSS at the end) in bytes (Linux VmHWM)."""
    done = subprocess.run(
        [sys.executable, "-c", _PEAK, str(source), str(out), dtype], capture_output=True, text=True, check=True
    )
    base, peak = map(int, done.stdout.split()[-2:])
    return base, peak


def _assert_bounded(source: Path, base: int, peak: int) -> None:
    """The peak stays under the largest tensor (float32 and cast) + one shard + 1 GB for the interpreter,
    libraries and vocabulary, and far below transformers' whole-model conversion (3.2 GB)."""
    from layerscope.checkpoints.gguf_header import read_gguf_header

    entries, _ = read_gguf_header(source)
    largest = max(_numel(e.shape) for e in entries) * (4 + 2)  # float32 dequantized, then bfloat16
    total = sum(_numel(e.shape) for e in entries) * 2
    bound = base + largest + min(total, gguf_cache.SHARD_BYTES) + (1 << 30)
    assert peak < bound and peak < 2.5e9, (peak, bound)


@pytest.mark.default_model
@pytest.mark.skipif(sys.platform != "linux", reason="reads the peak memory from /proc/self/status")
def test_default_model_bfloat16_streamed_in_bounded_memory_equals_the_float32_cache_cast(
    default_model, default_bfloat16_cache
):
    """bfloat16 conversion of the default model (the cache entry written once per session in a process of its own,
    ``tests/conftest.py``): bounded peak memory, and every tensor equals the float32 cache entry (the one every
    default-model test loads, checked against the seeds' numbers) cast to bfloat16."""
    from layerscope.checkpoints.default import default_model_path

    source = default_model_path()
    streamed = default_bfloat16_cache.entry
    assert json.loads((streamed / "layerscope.json").read_text())["dtype"] == "bfloat16"
    _assert_bounded(source, default_bfloat16_cache.base, default_bfloat16_cache.peak)
    float32_dir, _ = gguf_cache.cached_gguf_dir(source)
    ours, reference = _tensors(streamed), _tensors(float32_dir)
    assert sorted(ours) == sorted(reference)
    for name, value in reference.items():
        assert ours[name].dtype == torch.bfloat16 and torch.equal(ours[name], value.to(torch.bfloat16)), name


@pytest.mark.default_model
@pytest.mark.skipif(
    os.environ.get("LAYERSCOPE_FULL_ORACLES") != "1" or sys.platform != "linux",
    reason="about 10 minutes on 2 cores; LAYERSCOPE_FULL_ORACLES=1 runs it",
)
def test_default_model_streamed_equals_transformers_in_bounded_memory(tmp_path):
    """bfloat16: the streamed cache equals transformers' whole-model conversion bit for bit, with equal logits
    (the tiny GGUF tests compare the same on every run)."""
    from layerscope.checkpoints.default import default_model_path

    source = default_model_path()
    streamed, oracle = tmp_path / "streamed", tmp_path / "oracle"
    streamed.mkdir(), oracle.mkdir()
    _assert_bounded(source, *_convert_measured(source, streamed, "bfloat16"))
    gguf_cache.convert_with_transformers(source, oracle, "bfloat16")
    _assert_same(streamed, oracle)
    ids = [2, 651, 6037, 576, 6081, 603]
    assert torch.equal(_logits(streamed, ids), _logits(oracle, ids))


def _numel(shape) -> int:
    count = 1
    for size in shape:
        count *= size
    return count


def test_a_same_size_file_with_the_same_mtime_is_another_model(tmp_path, monkeypatch):
    """``cp -p other.gguf model.gguf`` / ``touch -r``: same path, size and mtime, other bytes. The cache is keyed by
    the content, so the second load converts the new file: its own fingerprint and its own weights."""
    import layerscope

    monkeypatch.setenv("LAYERSCOPE_CACHE", str(tmp_path / "cache"))
    path, other = write_tiny_gguf(tmp_path / "model.gguf", seed=0), write_tiny_gguf(tmp_path / "other.gguf", seed=1)
    assert path.stat().st_size == other.stat().st_size and path.read_bytes() != other.read_bytes()
    first = layerscope.load_model(str(path))
    before = path.stat()
    path.write_bytes(other.read_bytes())
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))  # touch -r: the old mtime
    assert (path.stat().st_size, path.stat().st_mtime_ns) == (before.st_size, before.st_mtime_ns)
    second, oracle = layerscope.load_model(str(path)), layerscope.load_model(str(other))
    assert second.fingerprint == oracle.fingerprint != first.fingerprint
    ids = torch.tensor([[1, 270, 280]])
    with torch.no_grad():
        logits = [m.module(ids).logits for m in (first, second, oracle)]
    assert torch.equal(logits[1], logits[2]) and not torch.equal(logits[0], logits[1])
