"""``read_layout``: the tensors of a checkpoint from its headers alone (safetensors, sharded, GGUF, MLX)."""

from __future__ import annotations

import json
import os
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path

from ..errors import LayerscopeError
from .entries import LogicalTensor, TensorEntry
from .gguf_header import read_gguf_header
from .mlx_quant import QuantConfig, group_logical, parse_quantization
from .safetensors_header import read_safetensors_header

INDEX_NAME = "model.safetensors.index.json"


@dataclass
class Layout:
    """What a checkpoint holds, read from headers only.

    Attributes:
        source: what was asked for.
        format: ``"safetensors"``, ``"safetensors (sharded)"`` or ``"gguf"``; ``" + mlx"`` when MLX-quantized.
        files: the files read, relative to the checkpoint directory.
        entries: every stored tensor.
        tensors: the logical tensors (MLX triplets merged into one).
        metadata: the safetensors ``__metadata__`` or GGUF scalar metadata.
    """

    source: str
    format: str
    files: list[str]
    entries: list[TensorEntry]
    tensors: list[LogicalTensor]
    metadata: dict = field(default_factory=dict)

    @property
    def n_parameters(self) -> int:
        """Logical parameters (an MLX-quantized matrix counts its unpacked elements)."""
        return sum(t.numel for t in self.tensors)

    @property
    def n_bytes(self) -> int:
        return sum(e.nbytes for e in self.entries)

    def by_dtype(self) -> dict[str, dict[str, int]]:
        """``{dtype: {"tensors": n, "elements": n, "bytes": n}}`` over stored tensors, largest first."""
        table: dict[str, Counter] = {}
        for entry in self.entries:
            row = table.setdefault(entry.dtype, Counter())
            row.update(tensors=1, elements=entry.numel, bytes=entry.nbytes)
        return {k: dict(v) for k, v in sorted(table.items(), key=lambda kv: -kv[1]["bytes"])}


def read_layout(source: str | os.PathLike) -> Layout:
    """Read the layout of a ``.safetensors`` / ``.gguf`` file, a sharded index, a directory, or a cached hub id.

    No tensor data is read, so a multi-gigabyte checkpoint lists in milliseconds.

    Example:
        >>> layout = read_layout("embeddinggemma-300m-mlx/")
        >>> layout.tensors[0].name, layout.tensors[0].quant
        ('dense.0', 'affine 8-bit g64')
    """
    text = os.fspath(source)
    path = Path(text).expanduser()
    if not path.exists():
        path = hub_snapshot(text)
    if path.is_dir():
        return _read_directory(path, text)
    if path.name.endswith(".index.json"):
        return _finish(text, "safetensors (sharded)", *_read_index(path), path.parent)
    suffix = path.suffix.lower()
    if suffix == ".gguf":
        entries, meta = read_gguf_header(path)
        return _finish(text, "gguf", [path.name], entries, meta, None)
    if suffix == ".safetensors":
        entries, meta = read_safetensors_header(path)
        return _finish(text, "safetensors", [path.name], entries, meta, path.parent)
    raise LayerscopeError(
        f"{text!r} is not a checkpoint: expected a .safetensors or .gguf file, {INDEX_NAME}, or a directory"
    )


def _read_directory(path: Path, text: str) -> Layout:
    if (path / INDEX_NAME).is_file():
        return _finish(text, "safetensors (sharded)", *_read_index(path / INDEX_NAME), path)
    files = sorted(path.glob("*.safetensors"))
    module_files = _module_files(path)
    if files or module_files:
        entries, meta = [], {}
        for file in files:
            found, file_meta = read_safetensors_header(file)
            entries += found
            meta.update(file_meta)
        for folder, file in module_files:
            found, _ = read_safetensors_header(file, label=f"{folder}/{file.name}")
            entries += [replace(e, name=f"{folder}.{e.name}") for e in found]
        _check_unique(entries, text)
        names = [f.name for f in files] + [f"{folder}/{file.name}" for folder, file in module_files]
        return _finish(text, "safetensors", names, entries, meta, path)
    ggufs = sorted(path.glob("*.gguf"))
    if len(ggufs) == 1:
        entries, meta = read_gguf_header(ggufs[0])
        return _finish(text, "gguf", [ggufs[0].name], entries, meta, None)
    found = ", ".join(p.name for p in ggufs) if ggufs else "no .safetensors or .gguf file"
    raise LayerscopeError(f"{text!r}: cannot tell which checkpoint to list ({found}); name the file")


def _module_files(path: Path) -> list[tuple[str, Path]]:
    """``[(folder, file)]``: weights of sentence-transformers modules (``2_Dense/model.safetensors``), by modules.json."""
    try:
        modules = json.loads((path / "modules.json").read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return []
    found = []
    for module in modules if isinstance(modules, list) else []:
        folder = module.get("path") if isinstance(module, dict) else None
        if (
            isinstance(folder, str)
            and folder
            and "/" not in folder
            and "\\" not in folder
            and folder not in (".", "..")
        ):
            file = path / folder / "model.safetensors"
            if file.is_file():
                found.append((folder, file))
    return found


def _read_index(index: Path) -> tuple[list[str], list[TensorEntry], dict]:
    try:
        data = json.loads(index.read_text(encoding="utf-8"))
        weight_map = data["weight_map"]
        if not isinstance(weight_map, dict):
            raise TypeError
    except (OSError, ValueError, KeyError, TypeError, RecursionError):
        raise LayerscopeError(f"{index}: not a valid index (expected JSON with a 'weight_map' object)") from None
    root = index.parent.resolve()
    for name, shard in weight_map.items():
        if not isinstance(shard, str):
            raise LayerscopeError(f"{index.name}: {name!r} is mapped to {shard!r}; expected a shard file name")
    shards = sorted(set(weight_map.values()))
    entries: list[TensorEntry] = []
    meta: dict = {}
    for shard in shards:
        shard_path = shard_file(root, shard)
        try:
            present = shard_path is not None and shard_path.is_file()
        except (OSError, ValueError):  # a name too long for the file system, or with a NUL byte
            shard_path, present = None, False
        if shard_path is None:
            raise LayerscopeError(f"{index.name}: shard {shard[:200]!r} is not a file name inside {root} (refused)")
        if not present:
            raise LayerscopeError(f"{index.name}: shard {shard!r} is missing from {root}")
        found, file_meta = read_safetensors_header(shard_path)
        names = {e.name for e in found}
        absent = [n for n, s in weight_map.items() if s == shard and n not in names]
        if absent:
            raise LayerscopeError(f"{index.name}: {absent[0]!r} is mapped to {shard!r} but that shard does not hold it")
        entries += found
        meta.update(file_meta)
    _check_unique(entries, str(index))
    return [str(s) for s in shards], entries, meta


def shard_file(root: Path, shard: str) -> Path | None:
    """The file a sharded index names, resolved; None when the name leaves the checkpoint directory.

    A shard is a plain file name in ``root``, which may be a link only to a file in ``root`` itself or, when
    ``root`` is a Hugging Face cache snapshot (``.../snapshots/<revision>``), into that repository's ``blobs/``.
    """
    if not isinstance(shard, str) or not shard or "/" in shard or "\\" in shard or shard in (".", ".."):
        return None
    try:
        root = root.resolve()
        target = (root / shard).resolve()
    except (OSError, ValueError, RuntimeError):  # a link loop, a name too long, a NUL byte
        return None
    allowed = {root}
    if root.parent.name == "snapshots":
        allowed.add(root.parent.parent / "blobs")
    return target if target.parent in allowed else None


def _check_unique(entries: list[TensorEntry], where: str) -> None:
    seen: dict[str, str] = {}
    for entry in entries:
        if entry.name in seen:
            raise LayerscopeError(f"{where}: tensor {entry.name!r} is in both {seen[entry.name]} and {entry.file}")
        seen[entry.name] = entry.file


def _finish(text, fmt, files, entries, meta, directory: Path | None) -> Layout:
    quant = _quant_config(directory)
    tensors = group_logical(entries, quant)
    if any(t.dtype.startswith("U32+") for t in tensors):
        fmt += " + mlx"
    return Layout(source=text, format=fmt, files=files, entries=entries, tensors=tensors, metadata=meta)


def _quant_config(directory: Path | None) -> QuantConfig | None:
    config = directory / "config.json" if directory is not None else None
    if config is None or not config.is_file():
        return None
    try:
        data = json.loads(config.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError) as exc:
        raise LayerscopeError(f"{config}: not valid JSON ({exc})") from None
    return parse_quantization(data, str(config)) if isinstance(data, dict) else None


def hub_snapshot(text: str) -> Path:
    """The local snapshot of a hub id already in the Hugging Face cache (nothing is downloaded)."""
    if "/" in text and not text.startswith((".", "/", "~")):
        try:
            from huggingface_hub import snapshot_download

            return Path(snapshot_download(text, local_files_only=True))
        except Exception:  # noqa: BLE001 - any failure means "not cached"
            pass
    raise LayerscopeError(
        f"no such checkpoint file or directory: {text!r} (hub ids are read only from the local cache)"
    )


# ----- what a forward needs ------------------------------------------------------------------------

#: bytes per element of the dtypes a model is loaded in (``--dtype``)
DTYPE_BYTES = {"float32": 4, "float16": 2, "bfloat16": 2, "float64": 8}
_STORED_BYTES = {"F32": 4, "F16": 2, "BF16": 2, "F64": 8}
#: the dtypes ``layerscope layout`` gives the memory of a forward for
MEMORY_DTYPES = ("float32", "bfloat16", "float16")
DEFAULT_SEQ_LEN = 128


@dataclass(frozen=True)
class ModelDims:
    """The sizes of a model a forward's buffers depend on, from its config, GGUF metadata or tensor shapes."""

    n_layers: int
    hidden: int
    intermediate: int
    vocab: int
    heads: int


@dataclass(frozen=True)
class ForwardMemory:
    """Bytes a forward of a model needs (see :func:`memory_estimate`).

    Attributes:
        dtype: the dtype of the weights.
        weights: every parameter in ``dtype`` (a GGUF or MLX-quantized tensor dequantized).
        residuals: the capture buffers: the residual stream at every layer (``embed``, each block, ``norm``),
            ``batch x seq_len x hidden`` float32 each.
        activations: one decoder block's intermediate tensors (attention scores, MLP) in ``dtype``.
        logits: next-token logits and probabilities at one position per sequence, float32.
        batch, seq_len: what the buffers were sized for.
    """

    dtype: str
    weights: int
    residuals: int
    activations: int
    logits: int
    batch: int
    seq_len: int

    @property
    def buffers(self) -> int:
        """Everything but the weights."""
        return self.residuals + self.activations + self.logits

    @property
    def total(self) -> int:
        return self.weights + self.buffers

    def to_dict(self) -> dict:
        return {
            "dtype": self.dtype,
            "weights": self.weights,
            "residuals": self.residuals,
            "activations": self.activations,
            "logits": self.logits,
            "buffers": self.buffers,
            "total": self.total,
            "batch": self.batch,
            "seq_len": self.seq_len,
        }


def weight_bytes(layout: Layout, dtype: str | None) -> int:
    """Bytes of every parameter of ``layout`` loaded in ``dtype`` (None: float32; ``"auto"``: each tensor's
    stored float dtype, float32 for quantized tensors, which are dequantized)."""
    if dtype in (None, "auto"):
        return sum(t.numel * _STORED_BYTES.get(t.dtype, 4) for t in layout.tensors)
    if dtype not in DTYPE_BYTES:
        raise LayerscopeError(f"dtype {dtype!r} has no known size; valid: {', '.join(DTYPE_BYTES)}, auto")
    return layout.n_parameters * DTYPE_BYTES[dtype]


def model_dims(layout: Layout, config: dict | None = None) -> ModelDims:
    """The sizes of the model behind ``layout``: from ``config`` (a ``config.json``), else the GGUF metadata,
    else the tensor shapes (the embedding matrix, the numbered blocks, the widest MLP matrix)."""
    config = config if isinstance(config, dict) else {}
    text = config.get("text_config") if isinstance(config.get("text_config"), dict) else config
    arch = layout.metadata.get("general.architecture")

    def pick(config_keys, gguf_key):
        for key in config_keys:
            value = text.get(key)
            if isinstance(value, int) and not isinstance(value, bool) and value > 0:
                return value
        value = layout.metadata.get(f"{arch}.{gguf_key}") if arch else None
        return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None

    matrices = [t for t in layout.tensors if len(t.shape) == 2]
    embed = max((t for t in matrices if "emb" in t.name or "wte" in t.name), key=lambda t: t.numel, default=None)
    embed = embed or max(matrices, key=lambda t: t.numel, default=None)
    vocab_shape, hidden_shape = (max(embed.shape), min(embed.shape)) if embed is not None else (0, 0)
    blocks = set()
    for tensor in layout.tensors:
        pieces = tensor.name.split(".")
        blocks |= {pieces[i + 1] for i, p in enumerate(pieces[:-1]) if p in _BLOCK_LISTS and pieces[i + 1].isdigit()}
    hidden = pick(("hidden_size", "n_embd", "d_model"), "embedding_length") or hidden_shape
    widest = max((max(t.shape) for t in matrices if t is not embed and min(t.shape) == hidden), default=hidden)
    return ModelDims(
        n_layers=pick(("num_hidden_layers", "n_layer", "num_layers"), "block_count") or len(blocks),
        hidden=hidden,
        intermediate=pick(("intermediate_size", "n_inner", "ffn_dim"), "feed_forward_length") or widest,
        vocab=pick(("vocab_size",), "vocab_size") or vocab_shape,
        heads=pick(("num_attention_heads", "n_head"), "attention.head_count") or 1,
    )


_BLOCK_LISTS = ("layers", "layer", "blk", "h", "blocks", "block")


def memory_estimate(
    source: str | os.PathLike | Layout,
    dtype: str | None = "float32",
    *,
    batch: int = 1,
    seq_len: int = DEFAULT_SEQ_LEN,
) -> ForwardMemory:
    """What a forward of ``batch`` sequences of ``seq_len`` tokens needs, with every layer's residual stream
    captured, from the checkpoint's headers (and ``config.json`` where there is one) alone.

    ``source`` is what :func:`read_layout` reads (``"default"``: the default model's GGUF), or a layout.
    The weights are exact (every parameter in ``dtype``); the buffers are an upper estimate for eager
    attention: residuals ``(n_layers + 2) x batch x seq_len x hidden x 4``, one block's activations
    ``batch x seq_len x (4 hidden + 3 intermediate) + batch x heads x seq_len^2`` elements of ``dtype``
    (twice, for the attention probabilities), logits ``2 x batch x vocab x 4``.

    Example:
        >>> memory_estimate("default", "bfloat16").weights    # Gemma 3 270M: 268,098,176 parameters x 2 bytes
        536196352
    """
    if batch < 1 or seq_len < 1:
        raise LayerscopeError(f"batch {batch} and sequence length {seq_len} must be at least 1")
    layout, config = _layout_and_config(source)
    dims = model_dims(layout, config)
    weights = weight_bytes(layout, dtype)
    per = DTYPE_BYTES.get(dtype or "float32", 4) if dtype != "auto" else max(2, weights // max(layout.n_parameters, 1))
    residuals = (dims.n_layers + 2) * batch * seq_len * dims.hidden * 4
    elements = batch * seq_len * (4 * dims.hidden + 3 * dims.intermediate) + 2 * batch * dims.heads * seq_len**2
    activations = elements * per
    logits = 2 * batch * dims.vocab * 4
    return ForwardMemory(str(dtype or "float32"), weights, residuals, activations, logits, batch, seq_len)


def forward_memory(
    source: str | os.PathLike | Layout,
    dtype: str | None = "float32",
    batch: int = 1,
    seq_len: int = DEFAULT_SEQ_LEN,
) -> int:
    """Bytes a forward of ``source`` in ``dtype`` needs with the capture buffers of ``batch`` sequences of
    ``seq_len`` tokens: weights plus buffers of :func:`memory_estimate`, from headers alone (no weights read).
    What to ask a scheduler for (e.g. a Ray task's ``memory``) before loading a model.

    Example:
        >>> forward_memory("default", "float32") / 2**30      # Gemma 3 270M
        1.01...
    """
    return memory_estimate(source, dtype, batch=batch, seq_len=seq_len).total


def model_depth(source: str | os.PathLike | None) -> int | None:
    """The number of decoder blocks of ``source`` (None or ``"default"``: the default model), read from the
    checkpoint's config or header alone (no weights), or None when they cannot be read here (e.g. a hub id not
    in the local cache): what layer numbers are checked against before a model loads.

    Example:
        >>> model_depth("default")            # Gemma 3 270M
        18
    """
    try:
        layout, config = _layout_and_config("default" if source is None else source)
        return model_dims(layout, config).n_layers or None
    except (LayerscopeError, OSError, ValueError):
        return None


def _layout_and_config(source) -> tuple[Layout, dict | None]:
    if isinstance(source, Layout):
        layout = source
    else:
        if str(source) == "default":
            from .default import default_model_path

            source = default_model_path()
        layout = read_layout(source)
    path = Path(str(layout.source)).expanduser()
    if not path.exists():
        try:
            path = hub_snapshot(str(layout.source))
        except LayerscopeError:
            return layout, None
    folder = path if path.is_dir() else path.parent
    if layout.format.startswith("gguf") or not (folder / "config.json").is_file():
        return layout, None
    try:
        if (folder / "config.json").stat().st_size > 64 << 20:
            return layout, None
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return layout, None
    return layout, config if isinstance(config, dict) else None
