"""An MLX-quantized sentence-embedding directory -> a plain sentence-transformers directory, cached once.

The layout read (seed 003, EmbeddingGemma): one ``model.safetensors`` holding the transformer as ``model.*``
and the Dense stages as ``dense.0``, ``dense.1``, ... (each an MLX triplet or a float weight), a
``config.json`` with the ``quantization`` block, tokenizer files, and the pipeline declared the
sentence-transformers way: ``modules.json`` with ``1_Pooling/config.json``, ``2_Dense/config.json``, ...
(their weights come from ``dense.<k>``, the k-th Dense module) and ``config_sentence_transformers.json``
(prompts). Without ``modules.json`` the EmbeddingGemma pipeline is assumed: mean pooling, each ``dense.<k>``
without bias or activation, then Normalize.

Everything is dequantized (bit-exact with MLX) and written to ``<cache>/mlx-st/<hash>/``, which
``SentenceTransformer`` then loads like any directory.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import warnings
from pathlib import Path

import torch

from .. import progress
from ..atomic import atomic_dir
from ..cache import cache_root
from ..errors import LayerscopeError
from .mlx import mlx_state_dict, read_config

_DENSE = re.compile(r"^dense\.(\d+)\.(weight|bias)$")
_QUANT_KEYS = ("quantization", "quantization_config")
_IDENTITY = "torch.nn.modules.linear.Identity"


def _directory_hash(path: Path) -> str:
    digest = hashlib.sha256()
    for item in sorted(p for p in path.rglob("*") if p.is_file()):
        stat = item.stat()
        digest.update(f"{item.relative_to(path)}:{stat.st_size}:{stat.st_mtime_ns}\n".encode())
        if item.suffix == ".json" and stat.st_size < (1 << 20):
            digest.update(item.read_bytes())
    return digest.hexdigest()


def cached_sentence_dir(path: Path) -> Path:
    """The float sentence-transformers directory for an MLX embedding directory, converting on first use.

    Example:
        >>> st_dir = cached_sentence_dir(Path("embeddinggemma-300m-mlx-8bit"))
        >>> SentenceTransformer(str(st_dir)).encode(["hello"]).shape
        (1, 768)
    """
    entry = cache_root() / "mlx-st" / _directory_hash(path)
    if (entry / "modules.json").is_file():
        return entry
    with progress.step(f"Dequantizing {path.name} once (cached for later loads)"):
        state = mlx_state_dict(path, torch.float32)
        with atomic_dir(entry) as tmp:
            _write_sentence_dir(path, state, tmp)
    return entry


def _write_sentence_dir(source: Path, state: dict[str, torch.Tensor], out: Path) -> None:
    from safetensors.torch import save_file

    transformer = {k[len("model.") :]: v for k, v in state.items() if k.startswith("model.")}
    dense: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in state.items():
        match = _DENSE.match(key)
        if match:
            dense.setdefault(int(match.group(1)), {})[f"linear.{match.group(2)}"] = value
        elif not key.startswith("model."):
            raise LayerscopeError(f"{source}: tensor {key!r} is neither 'model.*' nor 'dense.<k>.weight/bias'")
    if not transformer:
        raise LayerscopeError(f"{source}: no 'model.*' tensors: expected the transformer stored as 'model.*'")
    order = sorted(dense)
    if order != list(range(len(order))):
        raise LayerscopeError(f"{source}: Dense stages must be dense.0, dense.1, ...; found dense.{order}")

    for item in source.iterdir():  # tokenizer and sentence-transformers files; weights are rewritten below
        if item.is_file() and item.suffix != ".safetensors" and item.name != "config.json":
            shutil.copy(item, out / item.name)
        elif item.is_dir():
            shutil.copytree(item, out / item.name, ignore=shutil.ignore_patterns("*.safetensors", "*.bin"))
    config = {k: v for k, v in read_config(source).items() if k not in _QUANT_KEYS}
    modules = _modules(source, config, transformer, dense, out)
    (out / "config.json").write_text(json.dumps(config, indent=2))
    save_file({k: v.contiguous() for k, v in transformer.items()}, str(out / "model.safetensors"))
    dense_paths = [m["path"] for m in modules if m["type"].endswith("Dense")]
    if len(dense_paths) != len(order):
        raise LayerscopeError(
            f"{source}: modules.json declares {len(dense_paths)} Dense module(s) but the weights hold {len(order)} (dense.*)"
        )
    for index, folder in zip(order, dense_paths):
        weights = dense[index]
        directory = out / folder
        directory.mkdir(parents=True, exist_ok=True)
        if not (directory / "config.json").is_file():
            out_features, in_features = weights["linear.weight"].shape
            spec = {
                "in_features": in_features,
                "out_features": out_features,
                "bias": "linear.bias" in weights,
                "activation_function": _IDENTITY,
            }
            (directory / "config.json").write_text(json.dumps(spec, indent=2))
        save_file({k: v.contiguous() for k, v in weights.items()}, str(directory / "model.safetensors"))


def _modules(source: Path, config: dict, transformer: dict, dense: dict, out: Path) -> list[dict]:
    """modules.json as given, or the EmbeddingGemma pipeline written out when the directory has none."""
    if (source / "modules.json").is_file():
        try:
            modules = json.loads((source / "modules.json").read_text(encoding="utf-8"))
        except ValueError:
            modules = None
        if not isinstance(modules, list) or not all(
            isinstance(m, dict) and {"type", "path"} <= set(m) for m in modules
        ):
            raise LayerscopeError(f"{source / 'modules.json'}: expected a list of {{idx, name, path, type}} objects")
        for module in modules:
            target = (out / module["path"]).resolve()
            if out.resolve() not in (target, *target.parents):
                raise LayerscopeError(f"{source / 'modules.json'}: module path {module['path']!r} leaves the directory")
        return modules
    if config.get("model_type") == "gemma3_text" and "use_bidirectional_attention" not in config:
        warnings.warn(
            f"{source.name}: no modules.json; assuming EmbeddingGemma (bidirectional attention)", stacklevel=3
        )
        config["use_bidirectional_attention"] = True
    width = int(config.get("hidden_size") or transformer["embed_tokens.weight"].shape[1])
    names = ["sentence_transformers.models.Transformer", "sentence_transformers.models.Pooling"]
    paths = ["", "1_Pooling"]
    for k in sorted(dense):
        names.append("sentence_transformers.models.Dense")
        paths.append(f"{k + 2}_Dense")
    names.append("sentence_transformers.models.Normalize")
    paths.append(f"{len(paths)}_Normalize")
    modules = [{"idx": i, "name": str(i), "path": p, "type": t} for i, (p, t) in enumerate(zip(paths, names))]
    (out / "1_Pooling").mkdir(exist_ok=True)
    pooling = {"word_embedding_dimension": width, "pooling_mode_mean_tokens": True, "include_prompt": True}
    (out / "1_Pooling" / "config.json").write_text(json.dumps(pooling, indent=2))
    (out / paths[-1]).mkdir(exist_ok=True)
    (out / "modules.json").write_text(json.dumps(modules, indent=2))
    return modules
