"""Checks made before (and right after) a model is built, so hostile or broken files end in one line.

Before anything is imported from a model directory or built from its config:

- every file layerscope or transformers may open is a regular file (a FIFO named ``config.json`` or
  ``model.safetensors`` would block the reader forever);
- a directory that ships its own Python code (``auto_map`` in ``config.json``, ``tokenizer_config.json``,
  ``processor_config.json`` or ``preprocessor_config.json``) is refused unless ``trust_remote_code`` is set;
- the config's sizes are whole numbers within sane bounds (:data:`BOUNDS`), and the weights they imply
  fit in the memory available (:func:`available_memory`);
- the shards of a sharded index lie inside the model directory (or, in a Hugging Face cache snapshot,
  in the repository's ``blobs/``).

After loading, :func:`check_weights` refuses weights that do not match the model: missing, unexpected or
mis-shaped tensors, or tensors holding NaN or infinity.

Example:
    >>> check_config_values({"num_hidden_layers": 100000}, "big")
    Traceback (most recent call last):
    LayerscopeError: model 'big': config.json num_hidden_layers is 100000; at most 1000 is accepted
"""

from __future__ import annotations

import json
import os
import resource
import stat
from pathlib import Path

from ..checkpoints.gguf_header import read_gguf_header
from ..checkpoints.layout import DTYPE_BYTES, shard_file
from ..checkpoints.safetensors_header import regular_file_size
from ..errors import LayerscopeError
from ..run_files import MAX_JSON_BYTES, MAX_JSON_DEPTH, json_depth  # the bounds run directories share

#: ``{config key: (lowest, highest)}``: whole numbers outside these bounds are refused before building.
BOUNDS = {
    "num_hidden_layers": (1, 1000),
    "n_layer": (1, 1000),
    "num_layers": (1, 1000),
    "n_layers": (1, 1000),
    "hidden_size": (1, 65536),
    "n_embd": (1, 65536),
    "d_model": (1, 65536),
    "intermediate_size": (1, 1 << 20),
    "n_inner": (1, 1 << 20),
    "ffn_dim": (1, 1 << 20),
    "moe_intermediate_size": (1, 1 << 20),
    "vocab_size": (1, 10_000_000),
    "num_attention_heads": (1, 65536),
    "n_head": (1, 65536),
    "num_key_value_heads": (1, 65536),
    "head_dim": (1, 65536),
    "num_local_experts": (0, 4096),
    "num_experts": (0, 4096),
    "max_position_embeddings": (1, 1 << 27),
    "n_positions": (1, 1 << 27),
}
_NESTED = ("text_config",)
_CODE_FILES = ("config.json", "tokenizer_config.json", "processor_config.json", "preprocessor_config.json")
_JSON_LIMIT = MAX_JSON_BYTES  # bytes: a config or tokenizer config is kilobytes to a few megabytes
_INDEXES = ("model.safetensors.index.json", "pytorch_model.bin.index.json")
_DTYPE_BYTES = DTYPE_BYTES  # the one table of dtype sizes, shared with the layout's forward memory
_GGUF_KEYS = {
    "block_count": "num_hidden_layers",
    "embedding_length": "hidden_size",
    "feed_forward_length": "intermediate_size",
    "vocab_size": "vocab_size",
    "context_length": "max_position_embeddings",
    "attention.head_count": "num_attention_heads",
    "attention.head_count_kv": "num_key_value_heads",
    "expert_count": "num_local_experts",
}


def check_regular_files(directory: Path, source: str, depth: int = 1) -> None:
    """Refuse a model directory holding a FIFO, socket, device, broken link or unreadable entry (in the
    directory and, ``depth`` levels down, in its folders, where sentence-transformers keeps its modules)."""
    try:
        items = sorted(directory.iterdir())
    except OSError as exc:
        raise LayerscopeError(f"cannot read model directory {source!r}: {exc.strerror or exc}") from None
    for item in items:
        try:
            mode = item.stat().st_mode
        except OSError as exc:  # a broken link, a link loop, a name the file system refuses
            raise LayerscopeError(f"model {source!r}: cannot open {item.name!r} ({exc.strerror or exc})") from None
        if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
            raise LayerscopeError(f"model {source!r}: {item.name!r} is not a regular file (refused)")
        if stat.S_ISREG(mode) and not os.access(item, os.R_OK):
            raise LayerscopeError(f"model {source!r}: {item.name!r} is not readable")
        if stat.S_ISDIR(mode) and depth > 0 and not item.name.startswith("."):
            check_regular_files(item, source, depth - 1)


def read_json(path: Path, source: str) -> object:
    """A JSON file of a model directory, read only if it is a regular file of sane size and nesting."""
    size = regular_file_size(path, f"model {source!r}: {path.name}")
    if size > _JSON_LIMIT:
        raise LayerscopeError(f"model {source!r}: {path.name} is {size} bytes; at most {_JSON_LIMIT} accepted")
    try:
        return json.loads(path.read_bytes().decode("utf-8"))
    except RecursionError:
        raise LayerscopeError(f"model {source!r}: {path.name} is nested too deeply") from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise LayerscopeError(f"model {source!r}: {path.name} is not valid JSON ({_brief(exc)})") from None


#: the small JSON files transformers reads from a model directory (and copies, compares and prints: deep
#: nesting there costs minutes, found by benchmarks/fuzz_load.py)
_SMALL_JSON = (
    "config.json",
    "generation_config.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "added_tokens.json",
    "preprocessor_config.json",
    "processor_config.json",
    "chat_template.json",
)


def check_json_nesting(directory: Path, source: str) -> None:
    """Refuse a small JSON file of the model directory nested deeper than :data:`MAX_JSON_DEPTH`."""
    for name in _SMALL_JSON:
        path = directory / name
        if path.exists() and json_depth(read_json(path, source)) > MAX_JSON_DEPTH:
            raise LayerscopeError(f"model {source!r}: {name} is nested too deeply (more than {MAX_JSON_DEPTH} levels)")


def refuse_remote_code(directory: Path, source: str) -> None:
    """Refuse a directory whose configs point at its own Python code (``auto_map``), before any import."""
    for name in _CODE_FILES:
        path = directory / name
        if not path.exists():
            continue
        data = read_json(path, source)
        if isinstance(data, dict) and data.get("auto_map"):
            raise LayerscopeError(
                f"model {source!r} ships its own Python code (auto_map in {name}); layerscope runs it only with "
                "--trust-remote-code (trust_remote_code=True)"
            )


#: sizes a config may give per layer, as a list of whole numbers (Gemma 3n's ``intermediate_size``)
PER_LAYER = frozenset({"intermediate_size", "moe_intermediate_size", "ffn_dim", "n_inner"})
#: the most entries a per-layer list may have (the bound on the layer count)
MAX_PER_LAYER = BOUNDS["num_hidden_layers"][1]


def check_config_values(config: dict, source: str) -> None:
    """Refuse sizes that are not whole numbers or lie outside :data:`BOUNDS` (also inside ``text_config``); a
    size of :data:`PER_LAYER` may be a list of whole numbers (one per layer), each within the bounds."""
    for block in _config_blocks(config):
        for key, (low, high) in BOUNDS.items():
            if key not in block or block[key] is None:
                continue
            value = block[key]
            per_layer = key in PER_LAYER and isinstance(value, list) and 0 < len(value) <= MAX_PER_LAYER
            for item in value if per_layer else [value]:
                if isinstance(item, bool) or not isinstance(item, int):
                    expected = (
                        "a whole number or a list of them (one per layer)" if key in PER_LAYER else "a whole number"
                    )
                    raise LayerscopeError(
                        f"model {source!r}: config.json {key} is {_brief(value)}; expected {expected}"
                    )
                if item < low:
                    raise LayerscopeError(f"model {source!r}: config.json {key} is {item}; at least {low} is needed")
                if item > high:
                    raise LayerscopeError(f"model {source!r}: config.json {key} is {item}; at most {high} is accepted")


def _config_blocks(config: dict) -> list[dict]:
    blocks = [config]
    blocks += [config[k] for k in _NESTED if isinstance(config.get(k), dict)]
    return blocks


def estimate_parameters(config) -> int:
    """A lower bound on the parameters a transformers config builds (embeddings, attention, MLPs, head)."""
    text = config.get_text_config() if hasattr(config, "get_text_config") else config

    def size(*names, default=0):
        for name in names:
            value = getattr(text, name, None)
            if isinstance(value, list) and value and all(isinstance(v, int) and not isinstance(v, bool) for v in value):
                value = max(value)  # a size per layer: the largest bounds them all
            if isinstance(value, int) and not isinstance(value, bool) and value > 0:
                return value
        return default

    hidden = size("hidden_size", "n_embd", "d_model")
    layers = size("num_hidden_layers", "n_layer", "num_layers")
    vocab = size("vocab_size")
    heads = size("num_attention_heads", "n_head")
    head_dim = size("head_dim", default=hidden // heads if heads else hidden)
    kv_heads = size("num_key_value_heads", default=heads)
    inner = size("intermediate_size", "n_inner", "ffn_dim", default=4 * hidden)
    experts = size("num_local_experts", "num_experts", default=1)
    attention = hidden * head_dim * (2 * heads + 2 * kv_heads) if heads else 2 * hidden * hidden
    mlp = 2 * hidden * inner * experts
    head = 0 if getattr(text, "tie_word_embeddings", True) else vocab * hidden
    positions = size("n_positions") * hidden
    return vocab * hidden + head + positions + layers * (attention + mlp)


def dtype_bytes(dtype, config=None) -> int:
    """Bytes per parameter for ``dtype`` (a torch dtype, ``"auto"``: the config's own dtype, else 2)."""
    import torch

    if isinstance(dtype, torch.dtype):
        return torch.empty((), dtype=dtype).element_size()
    stored = getattr(config, "dtype", None) or getattr(config, "torch_dtype", None)
    name = str(stored).removeprefix("torch.") if stored is not None else ""
    return _DTYPE_BYTES.get(name, 2)


def available_memory() -> int:
    """Bytes this process may still allocate: the system's available memory, capped by ``ulimit -v``."""
    try:
        import psutil

        free = int(psutil.virtual_memory().available)
        used = int(psutil.Process().memory_info().vms)
    except (ImportError, OSError):
        free, used = _meminfo_available(), 0
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    if soft != resource.RLIM_INFINITY:
        free = min(free, max(soft - used, 0))
    return free


def _meminfo_available() -> int:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 1 << 62


def check_memory(n_parameters: int, bytes_per_parameter: int, source: str) -> None:
    """Refuse a model whose weights alone would not fit in :func:`available_memory`."""
    need = n_parameters * bytes_per_parameter
    free = available_memory()
    if need > free:
        raise LayerscopeError(
            f"model {source!r} needs at least {_gib(need)} for its {n_parameters:,} parameters "
            f"({bytes_per_parameter} bytes each) but only {_gib(free)} of memory is available (refused)"
        )


def check_config(config, source: str, dtype, memory: bool = True) -> None:
    """Bounds of a transformers config object and, with ``memory``, whether its weights fit in memory
    (not checked when accelerate places the model with a ``device_map``)."""
    check_config_values(config.to_dict() if hasattr(config, "to_dict") else dict(config), source)
    if memory:
        check_memory(estimate_parameters(config), dtype_bytes(dtype, config), source)


def check_gguf_header(path: Path, dtype: str = "float32") -> None:
    """Bounds and memory of a GGUF file from its header, before transformers dequantizes it. transformers
    dequantizes every tensor to float32 before casting to ``dtype``, so the float32 size must fit whatever the
    dtype of the cached copy."""
    entries, metadata = read_gguf_header(path)
    arch = metadata.get("general.architecture")
    if not isinstance(arch, str) or not arch:
        raise LayerscopeError(f"GGUF file {str(path)!r} names no general.architecture; a model GGUF must")
    for needed in ("block_count", "embedding_length"):  # without them transformers guesses (and can take hours)
        if f"{arch}.{needed}" not in metadata:
            raise LayerscopeError(f"GGUF file {str(path)!r} has no {arch}.{needed}; a model GGUF must state it")
    values = {}
    for suffix, key in _GGUF_KEYS.items():
        value = metadata.get(f"{arch}.{suffix}")
        if value is not None:
            values[key] = value
    check_config_values(values, str(path))
    check_memory(sum(e.numel for e in entries), max(4, _DTYPE_BYTES.get(dtype, 4)), str(path))


def check_directory(directory: Path, source: str, trust_remote_code: bool) -> None:
    """Everything checked on a local model directory before transformers opens it."""
    check_regular_files(directory, source)
    check_json_nesting(directory, source)
    if not trust_remote_code:
        refuse_remote_code(directory, source)
    config = read_json(directory / "config.json", source) if (directory / "config.json").exists() else None
    if config is not None and not isinstance(config, dict):
        raise LayerscopeError(f"model {source!r}: config.json must hold a JSON object")
    if config is not None:
        check_config_values(config, source)
    for index in _INDEXES:
        if (directory / index).exists():
            check_index_shards(directory / index, source)


def check_index_shards(index: Path, source: str) -> None:
    """Refuse an index whose shards leave the model directory, are missing or are not regular files."""
    data = read_json(index, source)
    weight_map = data.get("weight_map") if isinstance(data, dict) else None
    if not isinstance(weight_map, dict):
        raise LayerscopeError(f"model {source!r}: {index.name} has no 'weight_map' object")
    for shard in sorted({str(v) if not isinstance(v, str) else v for v in weight_map.values()}):
        target = shard_file(index.parent, shard)
        if target is None:
            raise LayerscopeError(
                f"model {source!r}: {index.name} names shard {shard[:200]!r}, not a file inside the model directory "
                "(refused)"
            )
        try:
            regular = stat.S_ISREG(target.stat().st_mode)
        except OSError:
            raise LayerscopeError(f"model {source!r}: shard {shard!r} named in {index.name} is missing") from None
        if not regular:
            raise LayerscopeError(f"model {source!r}: shard {shard!r} is not a regular file (refused)")


def check_weights(module, info: dict, source: str, allowed_missing=(), encoder: bool = False) -> None:
    """Refuse weights that do not match ``module``: missing, unexpected, mis-shaped or non-finite tensors.

    ``allowed_missing``: names that may be missing (an LM head saved apart, handled by the caller). For an
    encoder loaded without the head its checkpoint was saved with, keys outside the encoder's own modules
    (``cls.*``, ``lm_head.*``) are expected to be left unused.
    """
    import torch

    mismatched = [str(item[0]) if isinstance(item, tuple) else str(item) for item in info.get("mismatched_keys") or ()]
    if mismatched:
        raise LayerscopeError(f"model {source!r}: weights of the wrong shape for the model: {_names(mismatched)}")
    buffers = {name for name, _ in module.named_buffers()}
    missing = [k for k in info.get("missing_keys") or () if k not in set(allowed_missing) and k not in buffers]
    if missing:
        raise LayerscopeError(
            f"model {source!r}: its files lack {len(missing)} of the model's weights "
            f"(they would be random): {_names(sorted(missing))}"
        )
    unexpected = list(info.get("unexpected_keys") or ())
    if encoder:
        children = {name for name, _ in module.named_children()}
        unexpected = [k for k in unexpected if k.split(".")[0] in children]
    if unexpected:
        raise LayerscopeError(
            f"model {source!r}: its files hold {len(unexpected)} tensors the model does not have: "
            f"{_names(sorted(unexpected))}"
        )
    bad = []
    with torch.no_grad():
        for name, value in module.state_dict().items():
            if value.is_floating_point() and value.device.type != "meta" and not _finite(value):
                bad.append(name)
                if len(bad) > 3:
                    break
    if bad:
        raise LayerscopeError(f"model {source!r}: weights hold NaN or infinity: {_names(bad)}")


def _finite(value) -> bool:
    """True when every element is finite, checked in chunks (a bounded temporary, whatever the tensor's size)."""
    import torch

    flat = value.reshape(-1)
    return all(bool(torch.isfinite(chunk).all()) for chunk in flat.split(1 << 24))


def _names(names: list[str], limit: int = 3) -> str:
    shown = ", ".join(repr(n[:120]) for n in names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def _gib(n: int) -> str:
    return f"{n / 2**30:.1f} GiB"


def _brief(value: object) -> str:
    if isinstance(value, BaseException):
        lines = [line for line in str(value).splitlines() if line.strip()]
        return (lines[0] if lines else type(value).__name__)[:120]
    return repr(value)[:120]
