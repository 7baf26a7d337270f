"""A checkpoint's weights as float32 tensors, one at a time, by their Hugging Face names.

Every source layerscope loads has one float view here: a plain safetensors directory (single or sharded),
an MLX-quantized directory (each ``weight`` / ``scales`` / ``biases`` triplet dequantized to ``P.weight``,
bit-exact with ``mlx.core.dequantize``), a ``.gguf`` file or the default model (dequantized once by
transformers into layerscope's cache, which maps the GGUF names to the Hugging Face ones), a hub id already in
the local cache, or a loaded :class:`~layerscope.models.Model`. Tensors are read on demand, so comparing two
checkpoints never holds two whole models.

Example:
    >>> with open_float_weights("default") as weights:
    ...     weights.names[:2], weights.tensor("model.norm.weight").shape
    (['model.embed_tokens.weight', 'model.layers.0.input_layernorm.weight'], torch.Size([640]))
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from math import prod
from pathlib import Path

import torch

from ..checkpoints.default import default_model_path
from ..checkpoints.layout import hub_snapshot, read_layout
from ..errors import LayerscopeError
from ..model_spec import ModelSpec
from ..models.gguf_cache import cached_gguf_dir
from ..models.guard import check_directory
from ..models.mlx import is_mlx_dir
from ..models.mlx_dequant import dequantize
from ..models.model import Model

_WEIGHT_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".npz")
#: values per piece of :meth:`FloatWeights.chunks` (16 MiB of float32)
CHUNK = 1 << 22
#: torch dtypes of the safetensors dtypes (those this torch has)
_TORCH_DTYPES = {
    name: getattr(torch, attr)
    for name, attr in {
        "F64": "float64", "F32": "float32", "F16": "float16", "BF16": "bfloat16", "I64": "int64", "I32": "int32",
        "I16": "int16", "I8": "int8", "U8": "uint8", "U16": "uint16", "U32": "uint32", "U64": "uint64",
        "BOOL": "bool", "C64": "complex64", "F8_E4M3": "float8_e4m3fn", "F8_E5M2": "float8_e5m2",
        "F8_E8M0": "float8_e8m0fnu",
    }.items()
    if hasattr(torch, attr)
}  # fmt: skip


@dataclass
class FloatWeights:
    """An open checkpoint: tensor names in file order, shapes, and each tensor as float32 on request.

    Attributes:
        source: what was asked for (text).
        directory: the Hugging Face-layout directory the tensors come from (config and tokenizer files sit
            there); None for a loaded model.
        config: its ``config.json`` (empty for a loaded model).
        names: the tensor names, e.g. ``model.layers.0.mlp.up_proj.weight`` (an MLX triplet as ``P.weight``).
        shapes: ``{name: shape}`` of the float tensors (an MLX triplet unpacked).
        fmt: ``"safetensors"``, ``"mlx"``, ``"gguf"`` or ``"model"``.
    """

    source: str
    directory: Path | None
    config: dict
    names: list[str]
    shapes: dict[str, tuple[int, ...]]
    fmt: str
    _read: object = field(repr=False, default=None)
    _read_range: object = field(repr=False, default=None)

    def tensor(self, name: str) -> torch.Tensor:
        """The tensor ``name`` as a float32 CPU tensor (integer tensors keep their dtype)."""
        if name not in self.shapes:
            raise LayerscopeError(f"{self.source}: no tensor named {name!r}")
        value = self._read(name)
        return value.float() if value.is_floating_point() else value

    def chunks(self, name: str, size: int = CHUNK) -> Iterator[torch.Tensor]:
        """The tensor ``name`` flattened, as float32 pieces of at most ``size`` values (at least one piece; integer
        tensors keep their dtype). A tensor stored as such in a safetensors file is read piece by piece from the
        file, so a comparison never holds more than a piece of it."""
        if name not in self.shapes:
            raise LayerscopeError(f"{self.source}: no tensor named {name!r}")
        if self._read_range is None:
            flat = self.tensor(name).reshape(-1)
            yield from (flat[i : i + size] for i in range(0, max(flat.numel(), 1), size))
            return
        total = prod(self.shapes[name])
        for start in range(0, max(total, 1), size):
            value = self._read_range(name, start, min(size, total - start))
            yield value.float() if value.is_floating_point() else value

    def __iter__(self) -> Iterator[tuple[str, torch.Tensor]]:
        for name in self.names:
            yield name, self.tensor(name)


@contextlib.contextmanager
def open_float_weights(source) -> Iterator[FloatWeights]:
    """Open ``source`` (None / ``"default"``, a ``.gguf`` file, a directory, a cached hub id, a
    :class:`~layerscope.ModelSpec` or a loaded model) for reading float tensors one at a time."""
    if isinstance(source, Model):
        yield _model_weights(source)
        return
    cast = None
    if isinstance(source, ModelSpec):
        cast = _CASTS.get(source.dtype or "float32")
        source = source.source
    directory, fmt, text = resolve_directory(source)
    opened = _mlx_weights(directory, text) if fmt == "mlx" else _safetensors_weights(directory, text, fmt)
    for weights in opened:
        yield weights if cast is None else _cast(weights, cast)


#: the dtypes a spec loads weights in, as what their float32 values become (``auto`` keeps the stored dtype)
_CASTS = {"bfloat16": torch.bfloat16, "float16": torch.float16}


def _cast(weights: FloatWeights, dtype: torch.dtype) -> FloatWeights:
    """``weights`` as a model loaded in ``dtype`` holds them: each float value rounded to ``dtype`` (then read
    as float32), so that one checkpoint in float32 and in bfloat16 shows the cast's error."""

    def rounded(value: torch.Tensor) -> torch.Tensor:
        return value.to(dtype).float() if value.is_floating_point() else value

    read, read_range = weights._read, weights._read_range
    weights._read = lambda name: rounded(read(name))
    if read_range is not None:
        weights._read_range = lambda name, start, count: rounded(read_range(name, start, count))
    return weights


def resolve_directory(source) -> tuple[Path, str, str]:
    """``(directory, format, text)``: the Hugging Face-layout directory behind ``source``.

    A GGUF file (and the default model) is dequantized once into layerscope's cache and read from there.
    """
    if source is None or str(source) == "default":
        return cached_gguf_dir(default_model_path())[0], "gguf", "default"
    text = os.fspath(source)
    path = Path(text).expanduser()
    if path.is_file():
        if path.suffix.lower() == ".gguf":
            return cached_gguf_dir(path)[0], "gguf", text
        raise LayerscopeError(f"{text!r} is not a checkpoint: expected a .gguf file, a model directory or a hub id")
    if not path.exists():
        path = hub_snapshot(text)
    if not (path / "config.json").is_file():
        raise LayerscopeError(f"{text!r} is not a model directory: it has no config.json")
    check_directory(path, text, False)
    return path, "mlx" if is_mlx_dir(path) else "safetensors", text


def _read_config(directory: Path) -> dict:
    try:
        data = json.loads((directory / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError) as exc:
        raise LayerscopeError(f"{directory / 'config.json'}: not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise LayerscopeError(f"{directory / 'config.json'}: expected a JSON object")
    return data


def _layout(directory: Path, text: str):
    if not list(directory.glob("*.safetensors")) and not (directory / "model.safetensors.index.json").is_file():
        other = sorted(p.name for p in directory.iterdir() if p.suffix in _WEIGHT_SUFFIXES)
        found = f" (it has {', '.join(other[:3])})" if other else ""
        raise LayerscopeError(f"{text!r}: no .safetensors weights{found}; layerscope reads weights from safetensors")
    return read_layout(directory)


class _TensorFiles:
    """The data of the tensors a safetensors header lists, read with plain reads at the offsets it gives (never
    mapped whole: under an address-space limit a map of each file, on each side of a comparison, would not fit).
    """

    def __init__(self, directory: Path):
        self.directory = directory
        self.handles: dict[str, object] = {}

    def read(self, entry, start: int = 0, count: int | None = None) -> torch.Tensor:
        """Values ``start .. start + count`` of ``entry`` (default: all), flat, in its stored dtype."""
        dtype = _TORCH_DTYPES.get(entry.dtype)
        if dtype is None or entry.offset is None:
            raise LayerscopeError(f"{entry.file}: tensor {entry.name!r} of {entry.dtype} cannot be read as a tensor")
        item = torch.empty((), dtype=dtype).element_size()
        count = prod(entry.shape) - start if count is None else count
        data = bytearray(count * item)
        handle = self.handles.get(entry.file)
        if handle is None:
            handle = self.handles[entry.file] = open(self.directory / entry.file, "rb")  # noqa: SIM115
        handle.seek(entry.offset + start * item)
        if handle.readinto(data) != len(data):
            raise LayerscopeError(f"{entry.file}: tensor {entry.name!r} is cut short (the file shrank)")
        return torch.frombuffer(data, dtype=dtype) if data else torch.empty(0, dtype=dtype)

    def close(self) -> None:
        for handle in self.handles.values():
            handle.close()
        self.handles.clear()


def _safetensors_weights(directory: Path, text: str, fmt: str) -> Iterator[FloatWeights]:
    layout = _layout(directory, text)
    files = _TensorFiles(directory)
    where = {t.name: t.parts[0] for t in layout.tensors}
    try:
        yield FloatWeights(
            source=text,
            directory=directory,
            config=_read_config(directory),
            names=[t.name for t in layout.tensors],
            shapes={t.name: tuple(t.shape) for t in layout.tensors},
            fmt=fmt,
            _read=lambda name: files.read(where[name]).reshape(where[name].shape),
            _read_range=lambda name, start, count: files.read(where[name], start, count),
        )
    finally:
        files.close()


def _mlx_weights(directory: Path, text: str) -> Iterator[FloatWeights]:

    layout = _layout(directory, text)
    files = _TensorFiles(directory)
    logical = {}
    for tensor in layout.tensors:
        logical[f"{tensor.name}.weight" if len(tensor.parts) == 3 else tensor.name] = tensor

    def read(name: str) -> torch.Tensor:
        tensor = logical[name]
        parts = [files.read(p).reshape(p.shape) for p in tensor.parts]
        if len(parts) == 3:
            return dequantize(*parts, tensor.spec.bits, tensor.spec.group_size)
        return parts[0]

    try:
        yield FloatWeights(
            source=text,
            directory=directory,
            config=_read_config(directory),
            names=list(logical),
            shapes={name: tuple(t.shape) for name, t in logical.items()},
            fmt="mlx",
            _read=read,
        )
    finally:
        files.close()


def _model_weights(model) -> FloatWeights:
    """A loaded model's tensors; a tied one (the LM head sharing the embedding's storage) is listed once, as the
    checkpoint files list it."""
    state, seen = {}, set()
    for name, value in model.module.state_dict().items():
        key = (
            (value.untyped_storage().data_ptr(), value.storage_offset(), tuple(value.shape)) if value.numel() else None
        )
        if key is not None and key in seen:
            continue
        seen.add(key)
        state[name] = value
    return FloatWeights(
        source=model.source,
        directory=None,
        config={},
        names=list(state),
        shapes={name: tuple(value.shape) for name, value in state.items()},
        fmt="model",
        _read=lambda name: state[name].detach().cpu(),
    )
