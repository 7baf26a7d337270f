"""GGUF files: dequantize once with transformers, then keep safetensors + tokenizer in the cache.

transformers' GGUF loader dequantizes every tensor on every load (tens of seconds for a small
model). The first load writes the result as a plain Hugging Face directory (``model.safetensors`` in the
dtype asked for); later loads read that directory (seconds), and accelerate can place or offload it
tensor by tensor (``device_map``, ``max_memory``, ``offload_folder``). One entry per dtype:
``<cache>/gguf/<sha256 of the file>/`` holds float32, ``<sha256>-bfloat16/`` and ``<sha256>-float16/``
half of that; a bfloat16 load never writes a float32 copy. The cache entry is written to a temporary
directory and renamed, so an interrupted conversion leaves nothing behind.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

from .. import progress
from ..atomic import atomic_dir, write_json
from ..cache import cache_root
from ..errors import LayerscopeError

GGUF_MAGIC = b"GGUF"


def check_gguf(path: Path) -> None:
    """Raise ``LayerscopeError`` unless ``path`` starts with the GGUF magic bytes."""
    with open(path, "rb") as handle:
        magic = handle.read(4)
    if magic != GGUF_MAGIC:
        raise LayerscopeError(f"{str(path)!r} is not a GGUF file: it starts with {magic!r}, expected {GGUF_MAGIC!r}")


def gguf_general_name(path: str | os.PathLike) -> str | None:
    """The ``general.name`` metadata of a GGUF file (e.g. ``"Gemma 3 270m"``), read from its header only;
    None when the file has none or cannot be read."""
    from ..checkpoints.gguf_header import read_gguf_header

    try:
        _, metadata = read_gguf_header(path)
    except (LayerscopeError, OSError, ValueError):
        return None
    name = metadata.get("general.name")
    return name.strip() or None if isinstance(name, str) else None


def file_sha256(path: Path) -> str:
    """sha256 of a file, memoized in the cache by (absolute path, size, mtime) so big files hash once."""
    stat = path.stat()
    key = hashlib.sha256(f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()
    memo = cache_root() / "sha256" / key
    if memo.is_file():
        value = memo.read_text().strip()
        if len(value) == 64:
            return value
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 22), b""):
            digest.update(block)
    value = digest.hexdigest()
    memo.parent.mkdir(parents=True, exist_ok=True)
    from ..atomic import write_text

    write_text(memo, value)
    return value


#: the dtypes a GGUF file is dequantized to; ``auto`` and None mean float32 (the file has no float dtype of its own)
CACHE_DTYPES = ("float32", "bfloat16", "float16")


def cache_dtype(dtype=None) -> str:
    """The cache's dtype name for ``dtype`` (a name, a torch dtype, ``"auto"`` or None -> ``"float32"``)."""
    name = "float32" if dtype is None else str(dtype).removeprefix("torch.")
    name = "float32" if name == "auto" else name
    if name not in CACHE_DTYPES:
        raise LayerscopeError(f"GGUF files are dequantized to {', '.join(CACHE_DTYPES)}; not {name!r}")
    return name


def cache_entry(sha: str, dtype=None) -> Path:
    """Where the dequantized copy of the GGUF file with this sha256 lives, for ``dtype``."""
    name = cache_dtype(dtype)
    return cache_root() / "gguf" / (sha if name == "float32" else f"{sha}-{name}")


def cached_gguf_dir(path: Path, dtype=None) -> tuple[Path, str]:
    """Return ``(hf_directory, sha256)`` for a GGUF file, converting it on the first call for that dtype.

    The directory holds ``config.json``, ``model.safetensors`` (dequantized, in ``dtype``: float32 when None)
    and tokenizer files.
    """
    check_gguf(path)
    name = cache_dtype(dtype)
    sha = file_sha256(path)
    entry = cache_entry(sha, name)
    if (entry / "layerscope.json").is_file():
        return entry, sha
    if entry.exists():  # an incomplete entry (no marker): rebuild it rather than load it
        shutil.rmtree(entry, ignore_errors=True)
    from .guard import check_gguf_header

    check_gguf_header(path, name)  # sizes within bounds and the weights fit in memory, before transformers builds
    with progress.step(f"Dequantizing {path.name} to {name} once (cached for later loads)"):
        with atomic_dir(entry) as tmp:
            _convert(path, tmp, name)
            write_json(tmp / "layerscope.json", {"gguf_file": str(path), "sha256": sha, "dtype": name})
    return entry, sha


def _convert(path: Path, out: Path, dtype: str = "float32") -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder, name = str(path.parent), path.name
    from .broken import refused

    with refused(f"GGUF file {str(path)!r}"):
        tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name, trust_remote_code=False)
        model = AutoModelForCausalLM.from_pretrained(
            folder, gguf_file=name, trust_remote_code=False, dtype=getattr(torch, dtype)
        )
    # save_pretrained refuses a GGUF-quantized model; the weights are already dequantized.
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.hf_quantizer = None
    if hasattr(model, "is_quantized"):
        model.is_quantized = False
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    # Remember where the weights came from for run.json.
    config_path = out / "config.json"
    config = json.loads(config_path.read_text())
    config["layerscope_source_gguf"] = os.fspath(path)
    config_path.write_text(json.dumps(config, indent=2))
