"""Write an MLX-quantized model directory the way mlx-lm's ``convert -q`` writes one.

Each weight that mlx-lm quantizes (every linear layer and the embedding: the 2-D ``*.weight`` matrices whose
input width is a multiple of the group size; never norms or biases) becomes ``P.weight`` (uint32 codes),
``P.scales`` and ``P.biases``, produced by ``mlx.core.quantize`` itself; the other tensors are stored in the
chosen dtype. ``config.json`` gets mlx-lm's ``quantization`` block (and its copy ``quantization_config``; with a
recipe, one entry per module quantized at other bits, as mlx-lm's mixed-precision conversions write it), the
weights go to ``model.safetensors`` (shards of at most 5 GB with an index above that, as mlx-lm saves them,
written by ``mlx.core.save_safetensors`` with ``{"format": "mlx"}``), and the tokenizer files are copied.
"""

from __future__ import annotations

import fnmatch
import json
import os
import stat
from pathlib import Path

from ..checkpoints.mlx_quant import VALID_BITS, VALID_GROUP_SIZES
from ..errors import LayerscopeError, choices_text

MLX_DTYPES = ("float16", "bfloat16", "float32")
SHARD_BYTES = 5 << 30  # mlx-lm's max_file_size_gb=5
_DROP_CONFIG_KEYS = ("quantization", "quantization_config", "layerscope_source_gguf", "_name_or_path")
_NOT_COPIED = {"config.json", "layerscope.json", "model.safetensors.index.json"}
#: the side files that belong to a model (name patterns): tokenizers, generation and processor configs, chat
#: templates, sentence-transformers' module lists
SIDE_FILES = (
    "tokenizer*.json", "tokenizer.model", "*.tiktoken", "spiece.model", "sentencepiece*.model", "vocab.json",
    "vocab.txt", "merges.txt", "special_tokens_map.json", "added_tokens.json", "generation_config.json",
    "chat_template.json", "chat_template.jinja", "preprocessor_config.json", "processor_config.json",
    "modules.json", "sentence_bert_config.json", "config_sentence_transformers.json",
)  # fmt: skip
#: the most bytes one side file may hold (a large tokenizer.json is ~35 MB)
SIDE_FILE_BYTES = 256 << 20


def check_mlx_options(bits: int, group_size: int, dtype: str | None) -> None:
    """Refuse bits, group size or dtype that MLX does not quantize with (one line naming the valid ones)."""
    from ..experiment import ConfigError

    if isinstance(bits, bool) or bits not in VALID_BITS:
        raise ConfigError("bits", bits, f"is not supported by MLX; valid: {choices_text(VALID_BITS)}")
    if isinstance(group_size, bool) or group_size not in VALID_GROUP_SIZES:
        raise ConfigError(
            "group_size", group_size, f"is not supported by MLX; valid: {choices_text(VALID_GROUP_SIZES)}"
        )
    if dtype is not None and dtype not in MLX_DTYPES:
        raise ConfigError("dtype", dtype, f"is not supported; valid: {choices_text(MLX_DTYPES)}")


def require_mlx() -> None:
    """Refuse at once, in one line, when the ``mlx`` package (MLX's own quantizer) is not installed."""
    try:
        import mlx.core  # noqa: F401
    except (ImportError, OSError) as exc:
        raise LayerscopeError(f"MLX output needs the mlx package ({exc}): pip install 'layerscope[mlx]'") from None


def quantizes(name: str, shape: tuple[int, ...], group_size: int) -> bool:
    """True for a tensor mlx-lm quantizes: a linear layer's or the embedding's 2-D ``weight`` whose input width
    is a multiple of ``group_size`` (``nn.quantize``'s default predicate)."""
    return name.endswith(".weight") and len(shape) == 2 and shape[-1] % group_size == 0


def conversion_dtype(config: dict, dtype: str | None) -> str:
    """The dtype the weights are cast to before quantizing: ``dtype``, else the config's ``torch_dtype`` /
    ``dtype`` as mlx-lm's ``convert`` takes it, else float16."""
    if dtype is not None:
        return dtype
    for key in ("torch_dtype", "dtype"):
        value = config.get(key)
        if value in MLX_DTYPES:
            return value
    text = config.get("text_config")
    if isinstance(text, dict) and text.get("dtype") in MLX_DTYPES:
        return text["dtype"]
    return "float16"


def write_mlx(
    weights,
    out: Path,
    bits: int,
    group_size: int,
    dtype: str | None = None,
    description: str = "Quantizing",
    recipe=None,
) -> dict:
    """Quantize the tensors of ``weights`` (a :class:`~layerscope.convert.float_weights.FloatWeights`) into
    the existing empty directory ``out``; returns a summary (dtype, counts, bytes). With ``recipe`` (a
    :class:`~layerscope.convert.recipe.Recipe`), its base bits and group size are used and each module it
    names is quantized at its own bits (``written["overridden"]`` counts them).

    Example:
        >>> with open_float_weights("default") as weights:
        ...     write_mlx(weights, Path("q4"), bits=4, group_size=64)["quantized"]
        127
    """
    import mlx.core as mx
    import numpy as np

    if recipe is not None:
        bits, group_size = recipe.bits, recipe.group_size
    check_mlx_options(bits, group_size, dtype)
    if weights.directory is None:
        raise LayerscopeError("quantizing needs a checkpoint on disk (a directory, a .gguf file or a hub id)")
    config = weights.config
    tied = bool(config.get("tie_word_embeddings", (config.get("text_config") or {}).get("tie_word_embeddings")))
    if recipe is not None:
        check_recipe_modules(recipe, weights, group_size, tied)
    copied = side_files(weights.directory)  # refused before any tensor is read
    dtype = conversion_dtype(config, dtype)
    mx_dtype = getattr(mx, dtype)
    arrays: dict[str, object] = {}
    quantized = kept = parameters = overridden = 0
    from .. import progress

    for name in progress.track(weights.names, description):
        if tied and name.endswith("lm_head.weight"):
            continue  # mlx-lm drops a tied head: the embedding serves as the head
        value = weights.tensor(name)
        if not value.is_floating_point():
            arrays[name] = mx.array(value.numpy())
            parameters += value.numel()
            kept += 1
            continue
        array = mx.array(value.numpy().astype(np.float32, copy=False)).astype(mx_dtype)
        parameters += value.numel()
        _check_finite(name, value, dtype, array)
        del value
        if quantizes(name, tuple(array.shape), group_size):
            module = name[: -len(".weight")]
            module_bits = bits if recipe is None else recipe.bits_of(module)
            overridden += recipe is not None and module in recipe.modules
            q, s, b = mx.quantize(array, group_size, module_bits)
            mx.eval(q, s, b)
            _check_finite(name, None, dtype, s, b)
            arrays[f"{module}.weight"], arrays[f"{module}.scales"], arrays[f"{module}.biases"] = q, s, b
            quantized += 1
        else:
            mx.eval(array)
            arrays[name] = array
            kept += 1
        del array
    if not quantized:
        raise LayerscopeError(
            f"{weights.source}: no weight matrix has an input width divisible by group size {group_size}; nothing to quantize"
        )
    files = _save_shards(arrays, out, parameters)
    block = {"group_size": group_size, "bits": bits, "mode": "affine"}
    if recipe is not None:
        block = recipe.mlx_quantization()
    new_config = {k: v for k, v in config.items() if k not in _DROP_CONFIG_KEYS}
    new_config["quantization"] = dict(block)
    new_config["quantization_config"] = dict(block)
    (out / "config.json").write_text(json.dumps(new_config, indent=4, sort_keys=True) + "\n", encoding="utf-8")
    _copy_side_files(copied, out)
    overrides = {"overridden": overridden} if recipe is not None else {}
    return {
        "dtype": dtype,
        "quantized": quantized,
        **overrides,
        "unquantized": kept,
        "files": files,
        "bytes": sum((out / f).stat().st_size for f in files),
    }


def check_recipe_modules(recipe, weights, group_size: int, tied: bool) -> None:
    """Refuse, before anything is read, a recipe module that ``weights`` does not hold as a matrix MLX quantizes
    (one line naming it, and the nearest module names the checkpoint has)."""
    from .recipe import unknown_modules_error

    modules = [name[: -len(".weight")] for name in weights.names if name.endswith(".weight")]
    for module in recipe.modules:
        if tied and module.rpartition(".")[2] == "lm_head":
            embedding = next((m for m in modules if m.endswith("embed_tokens")), "the embedding")
            raise LayerscopeError(
                f"recipe module {module!r} is the head, tied to the embedding in {weights.source}: MLX stores no "
                f"separate head; give the embedding ({embedding!r}) its bits instead"
            )
    missing = [m for m in recipe.modules if f"{m}.weight" not in weights.shapes]
    if missing:
        raise unknown_modules_error(missing, modules, weights.source)
    for module in recipe.modules:
        shape = tuple(weights.shapes[f"{module}.weight"])
        if not quantizes(f"{module}.weight", shape, group_size):
            raise LayerscopeError(
                f"recipe module {module!r} (weight {list(shape)}) is not a matrix MLX quantizes in groups of "
                f"{group_size}; name a linear layer or the embedding"
            )


def _check_finite(name: str, value, dtype: str, *arrays) -> None:
    """Refuse a tensor that ``dtype`` (or the scales and biases quantizing in it) cannot hold: finite values
    turned infinite would make the whole model's output NaN."""
    import mlx.core as mx

    if all(mx.all(mx.isfinite(a)).item() for a in arrays):
        return
    if value is not None and not bool(value.isfinite().all()):
        raise LayerscopeError(
            f"{name} holds values that are not finite (inf or NaN); a model with them cannot be quantized"
        )
    largest = float(value.abs().max()) if value is not None else None
    where = f" values up to {largest:.4g}," if largest is not None else ""
    raise LayerscopeError(
        f"{name} has{where} beyond what {dtype} holds once quantized (float16 ends at 65504); give --dtype bfloat16 "
        "or float32"
    )


def _save_shards(arrays: dict, out: Path, parameters: int) -> list[str]:
    import mlx.core as mx

    shards, current, size = [], {}, 0
    for name, array in arrays.items():
        if current and size + array.nbytes > SHARD_BYTES:
            shards.append(current)
            current, size = {}, 0
        current[name] = array
        size += array.nbytes
    shards.append(current)
    names = ["model.safetensors"] if len(shards) == 1 else []
    names = names or [f"model-{i:05d}-of-{len(shards):05d}.safetensors" for i in range(1, len(shards) + 1)]
    weight_map = {}
    for file, shard in zip(names, shards):
        mx.save_safetensors(str(out / file), shard, metadata={"format": "mlx"})
        weight_map.update(dict.fromkeys(shard, file))
    total = sum(a.nbytes for a in arrays.values())
    index = {
        "metadata": {"total_size": total, "total_parameters": parameters},
        "weight_map": dict(sorted(weight_map.items())),
    }
    (out / "model.safetensors.index.json").write_text(json.dumps(index, indent=4), encoding="utf-8")
    return names


def side_files(source: Path) -> list[Path]:
    """The files beside the weights that belong to the model and are copied with it (tokenizer, generation
    config, chat template, sentence-transformers' module list; see :data:`SIDE_FILES`), checked before anything
    is written: each must be a regular file of at most :data:`SIDE_FILE_BYTES`, not a link out of the model's
    folder (a hub cache's links into its own ``blobs/`` are the model's), nor hard-linked. Other files (notes,
    a link to ``/proc/self/environ``) are left behind.
    """
    found = []
    for item in sorted(source.iterdir()):
        if item.name in _NOT_COPIED or not any(fnmatch.fnmatchcase(item.name, p) for p in SIDE_FILES):
            continue
        _check_side_file(source, item)
        found.append(item)
    return found


def _check_side_file(source: Path, item: Path) -> None:
    real = Path(os.path.realpath(item))
    if item.is_symlink():
        homes = [Path(os.path.realpath(source))]
        if source.parent.name == "snapshots":  # a hub cache snapshot: its files link into the repo's blobs/
            homes.append(Path(os.path.realpath(source.parent.parent / "blobs")))
        if not any(real.is_relative_to(home) for home in homes):
            raise LayerscopeError(
                f"{str(item)!r} is a link to {str(real)!r}, outside the model's folder; copy the file itself there"
            )
    try:
        info = os.stat(real)
    except OSError as exc:
        raise LayerscopeError(f"{str(item)!r} cannot be read ({exc.strerror})") from None
    if not stat.S_ISREG(info.st_mode):
        raise LayerscopeError(f"{str(item)!r} is not a regular file; a model's side files are plain files")
    if info.st_nlink > 1:
        raise LayerscopeError(f"{str(item)!r} is hard-linked ({info.st_nlink} names); copy the file itself there")
    if info.st_size > SIDE_FILE_BYTES:
        raise LayerscopeError(
            f"{str(item)!r} holds {info.st_size:,} bytes, more than a model's side file may ({SIDE_FILE_BYTES:,})"
        )


def _copy_side_files(files: list[Path], out: Path) -> None:
    """Copy the checked :func:`side_files` (at most :data:`SIDE_FILE_BYTES` each, read from a regular file)."""
    for item in files:
        fd = os.open(os.path.realpath(item), os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        with os.fdopen(fd, "rb") as handle:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise LayerscopeError(f"{str(item)!r} is not a regular file; a model's side files are plain files")
            data = handle.read(SIDE_FILE_BYTES + 1)
        if len(data) > SIDE_FILE_BYTES:
            raise LayerscopeError(f"{str(item)!r} grew past {SIDE_FILE_BYTES:,} bytes while it was copied")
        (out / item.name).write_bytes(data)
