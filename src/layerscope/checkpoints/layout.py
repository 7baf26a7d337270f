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
        path = _hub_snapshot(text)
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


def _hub_snapshot(text: str) -> Path:
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
