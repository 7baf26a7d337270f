"""GGUF files: dequantize once, tensor by tensor, then keep safetensors + tokenizer in the cache.

transformers' GGUF loader dequantizes every tensor on every load (tens of seconds for a small
model) and holds them all in memory. The first load writes a plain Hugging Face directory instead, one
tensor at a time (:func:`convert_streaming`: safetensors shards of at most 2 GB in the dtype asked for,
with transformers' own GGUF name mapping and fix-ups); later loads read that directory (seconds), and accelerate can place or offload it
tensor by tensor (``device_map``, ``max_memory``, ``offload_folder``). One entry per dtype:
``<cache>/gguf/<sha256 of the file>/`` holds float32, ``<sha256>-bfloat16/`` and ``<sha256>-float16/``
half of that; a bfloat16 load never writes a float32 copy. The cache entry is written to a temporary
directory and renamed, so an interrupted conversion leaves nothing behind.
"""

from __future__ import annotations

import gc
import hashlib
import json
import os
import shutil
from pathlib import Path

from .. import progress
from ..atomic import atomic_dir, write_json
from ..cache import cache_root
from ..checkpoints.gguf_header import read_gguf_header, read_gguf_tensor_table
from ..errors import LayerscopeError
from .names import printable_name

GGUF_MAGIC = b"GGUF"


def check_gguf(path: Path) -> None:
    """Raise ``LayerscopeError`` unless ``path`` starts with the GGUF magic bytes."""
    with open(path, "rb") as handle:
        magic = handle.read(4)
    if magic != GGUF_MAGIC:
        raise LayerscopeError(f"{str(path)!r} is not a GGUF file: it starts with {magic!r}, expected {GGUF_MAGIC!r}")


def gguf_general_name(path: str | os.PathLike) -> str | None:
    """The ``general.name`` metadata of a GGUF file (e.g. ``"Gemma 3 270m"``), read from its header only and made
    printable (:func:`~layerscope.models.names.printable_name`); None when the file has none or cannot be read."""
    try:
        _, metadata = read_gguf_header(path)
    except (LayerscopeError, OSError, ValueError):
        return None
    return printable_name(metadata.get("general.name"))


def file_sha256(path: Path) -> str:
    """sha256 of a file's bytes, computed on every call: the cache and the fingerprint follow the content, so
    another file copied in place with the same size and mtime (``cp -p``, ``touch -r``) is another model.
    0.35 to 0.55 s for the 253 MB default model (measured on 2 shared cores), a small part of a load."""
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


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

    The directory holds ``config.json``, ``model.safetensors`` or shards with ``model.safetensors.index.json``
    (dequantized, in ``dtype``: float32 when None) and tokenizer files.
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


#: the most bytes of tensors one safetensors shard of a converted GGUF file holds (the shard is built in memory)
SHARD_BYTES = 2 << 30


class _NotStreamable(Exception):
    """The file's tensors cannot be mapped one by one onto the model's; transformers converts it whole."""


def _convert(path: Path, out: Path, dtype: str = "float32") -> None:
    """Convert tensor by tensor (memory: the largest tensor plus one shard); architectures whose tensors
    do not map one by one go through transformers, which holds every dequantized tensor at once."""
    try:
        convert_streaming(path, out, dtype)
    except _NotStreamable as exc:
        for item in out.iterdir():
            shutil.rmtree(item) if item.is_dir() else item.unlink()
        progress.console().print(f"{path.name}: {exc}; converting through transformers (all tensors in memory)")
        convert_with_transformers(path, out, dtype)


def convert_streaming(path: Path, out: Path, dtype: str = "float32", shard_bytes: int = SHARD_BYTES) -> None:
    """Write ``path`` as a Hugging Face directory in ``out``, one tensor at a time.

    Each tensor is read from the memory-mapped file, dequantized (``gguf.quants.dequantize``), renamed and
    fixed up by transformers' own GGUF tables (``get_gguf_hf_weights_map`` and the architecture's
    ``TensorProcessor``: Llama's Q/K row order, Gemma's norm offsets), cast to ``dtype`` and added to a
    safetensors shard of at most ``shard_bytes``, written as soon as it is full. The tensors, config and
    tokenizer equal those of transformers' ``from_pretrained(gguf_file=...)`` + ``save_pretrained``.
    Raises ``_NotStreamable`` for an architecture whose tensors do not map one to one onto the model's.
    """
    import numpy as np
    import torch
    from gguf import GGMLQuantizationType
    from gguf.quants import quant_shape_to_byte_shape
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer
    from transformers.integrations.gguf.utils import is_gguf_arch_supported
    from transformers.modeling_gguf_pytorch_utils import (
        TENSOR_PROCESSORS,
        TensorProcessor,
        get_gguf_hf_weights_map,
        load_gguf_checkpoint,
    )

    from .broken import refused

    folder, name = str(path.parent), path.name
    target = getattr(torch, dtype)
    with refused(f"GGUF file {str(path)!r}"):
        # the tensor table only (GGUFReader would parse the whole vocabulary into numpy objects too)
        table = read_gguf_tensor_table(path)
        architecture = read_gguf_header(path)[1]["general.architecture"]
        if is_gguf_arch_supported(architecture):
            raise _NotStreamable(f"transformers loads {architecture!r} GGUF files through its own weight conversions")
        # The metadata first (parsing a large vocabulary takes hundreds of megabytes, freed before the tensors).
        AutoTokenizer.from_pretrained(folder, gguf_file=name, trust_remote_code=False).save_pretrained(out)
        gguf_config = load_gguf_checkpoint(str(path), return_tensors=False)["config"]
        config = AutoConfig.from_pretrained(folder, gguf_file=name, trust_remote_code=False)
        with torch.device("meta"):
            model = AutoModelForCausalLM.from_config(config, dtype=target, trust_remote_code=False)
    gc.collect()
    _release_freed_memory()
    data = np.memmap(path, dtype=np.uint8, mode="r")
    processor = TENSOR_PROCESSORS.get(architecture, TensorProcessor)(config=gguf_config)
    mapping = get_gguf_hf_weights_map(model, processor)
    expected = _saved_shapes(model)
    plan = model._get_dtype_plan(target)  # modules transformers keeps in float32 whatever the dtype

    shards: list[list[str]] = []
    weight_map: dict[str, str] = {}
    pending: dict[str, torch.Tensor] = {}
    pending_bytes = total = 0

    def flush() -> None:
        nonlocal pending, pending_bytes
        if pending:
            shard = out / f".shard-{len(shards):05d}.safetensors"
            save_file(pending, str(shard), metadata={"format": "pt"})
            shards.append(list(pending))
            pending, pending_bytes = {}, 0

    from safetensors.torch import save_file

    for item, start in table:
        kind = GGMLQuantizationType[item.dtype]
        raw = data[start : start + item.nbytes].reshape(quant_shape_to_byte_shape(item.shape, kind))
        weights = _dequantize_rows(raw, kind)
        del raw
        parsed_tensors: dict = {"tensors": {}}
        result = processor.process(
            weights=weights, name=item.name, tensor_key_mapping=mapping, parsed_parameters=parsed_tensors
        )
        del weights
        if parsed_tensors["tensors"] or (result.name is None and item.name in mapping):
            raise _NotStreamable(f"{architecture!r} merges or splits tensors while loading ({item.name})")
        if result.name not in mapping:
            continue  # transformers drops it too (e.g. rope frequencies the model computes itself)
        hf_name = mapping[result.name]
        if hf_name not in expected or hf_name in weight_map or hf_name in pending:
            raise _NotStreamable(f"{item.name} maps to {hf_name!r}, which the model does not hold once")
        array = np.ascontiguousarray(result.weights)
        del result
        tensor = torch.from_numpy(array if array.flags.writeable else array.copy())
        keep = next((t for module, t in plan.items() if module in hf_name), None)
        tensor = tensor.to(keep or target)
        del array
        if tuple(tensor.shape) != expected[hf_name]:
            raise _NotStreamable(
                f"{item.name} has shape {tuple(tensor.shape)}, the model's {hf_name} {expected[hf_name]}"
            )
        size = tensor.numel() * tensor.element_size()
        if pending and pending_bytes + size > shard_bytes:
            flush()
        pending[hf_name] = tensor
        pending_bytes += size
        total += size
        weight_map[hf_name] = ""
        del tensor
    flush()
    missing = sorted(set(expected) - set(weight_map))
    if missing:
        raise _NotStreamable(
            f"the file has no tensor for {missing[0]!r}" + (f" and {len(missing) - 1} more" if len(missing) > 1 else "")
        )

    if len(shards) == 1:
        (out / ".shard-00000.safetensors").rename(out / "model.safetensors")
    else:
        for index, names in enumerate(shards):
            file = f"model-{index + 1:05d}-of-{len(shards):05d}.safetensors"
            (out / f".shard-{index:05d}.safetensors").rename(out / file)
            weight_map.update(dict.fromkeys(names, file))
        index_data = {"metadata": {"total_size": total}, "weight_map": dict(sorted(weight_map.items()))}
        (out / "model.safetensors.index.json").write_text(json.dumps(index_data, indent=2, sort_keys=True) + "\n")
    # The config and generation config as save_pretrained writes them for this model.
    model.config.architectures = [type(model).__name__]
    model.config.save_pretrained(out)
    if model.can_generate() and model.generation_config is not None:
        model.generation_config.save_pretrained(out)
    _note_source(out, path)


#: raw bytes of a quantized tensor dequantized in one go (numpy's temporaries are a few times the float32 result)
DEQUANTIZE_CHUNK_BYTES = 8 << 20


def _dequantize_rows(data, kind):
    """``gguf.quants.dequantize`` of ``data`` (a memory-mapped quantized tensor, a row of blocks per row),
    a few rows at a time into one float32 array, so its temporaries stay small; the values are the same."""
    import numpy as np
    from gguf import GGMLQuantizationType
    from gguf.quants import dequantize

    rows = data.shape[0] if data.ndim >= 2 else 0
    if kind in (GGMLQuantizationType.F32, GGMLQuantizationType.F16) or rows < 2:
        return dequantize(data, kind)
    step = max(1, DEQUANTIZE_CHUNK_BYTES // max(1, data[0].nbytes))
    first = dequantize(data[:step], kind)
    result = np.empty((rows, *first.shape[1:]), dtype=first.dtype)
    result[: len(first)] = first
    del first
    for start in range(step, rows, step):
        result[start : start + step] = dequantize(data[start : start + step], kind)
    return result


def _release_freed_memory() -> None:
    """Hand memory freed by the C allocator back to the system (glibc's ``malloc_trim``; elsewhere nothing)."""
    import ctypes
    import ctypes.util

    try:
        ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def _saved_shapes(model) -> dict[str, tuple[int, ...]]:
    """``{name: shape}`` of the tensors save_pretrained writes for ``model``: a tied weight once."""
    seen: set[int] = set()
    shapes = {}
    for key, value in model.state_dict(keep_vars=True).items():
        if id(value) in seen:
            continue
        seen.add(id(value))
        shapes[key] = tuple(value.shape)
    return shapes


def convert_with_transformers(path: Path, out: Path, dtype: str = "float32") -> None:
    """transformers' conversion: ``from_pretrained(gguf_file=...)`` then ``save_pretrained``; it holds every
    dequantized tensor in memory at once. The streaming conversion's oracle, and its fallback."""
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
    _note_source(out, path)


def _note_source(out: Path, path: Path) -> None:
    """Remember where the weights came from for run.json."""
    config_path = out / "config.json"
    config = json.loads(config_path.read_text())
    config["layerscope_source_gguf"] = os.fspath(path)
    config_path.write_text(json.dumps(config, indent=2))
