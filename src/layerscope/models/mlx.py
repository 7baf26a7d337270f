"""Load an MLX-quantized model directory off Apple hardware: dequantize into the transformers architecture.

An MLX directory is a Hugging Face directory whose ``config.json`` has a ``quantization`` block and whose
quantized linear layers are stored as ``weight`` (uint32) + ``scales`` + ``biases``. Every triplet is
dequantized (bit-exact with ``mlx.core.dequantize``) into ``P.weight`` and the float state dict is loaded
into the model transformers builds from the same config.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import torch
from safetensors import safe_open

from .. import progress
from ..checkpoints import read_layout
from ..errors import LayerscopeError
from .mlx_dequant import dequantize

_QUANT_KEYS = ("quantization", "quantization_config")
_SENTENCE_HEAD = re.compile(r"^dense\.\d+\.(weight|bias)$")


def read_config(path: Path) -> dict:
    from .guard import read_json

    data = read_json(path / "config.json", str(path))
    if not isinstance(data, dict):
        raise LayerscopeError(f"{path / 'config.json'}: expected a JSON object")
    return data


def is_mlx_dir(path: Path) -> bool:
    """True for a directory whose config.json carries MLX's ``quantization`` block."""
    if not (path / "config.json").is_file():
        return False
    config = read_config(path)
    if "quantization" in config:
        return True
    block = config.get("quantization_config")
    return isinstance(block, dict) and "quant_method" not in block and "bits" in block


def mlx_state_dict(path: Path, dtype: torch.dtype = torch.float32) -> dict[str, torch.Tensor]:
    """The float state dict of an MLX directory: triplets dequantized to ``P.weight``, other tensors cast.

    Shapes are validated from the headers first (bits that do not match the packed shapes are refused
    before any data is read).

    Example:
        >>> sd = mlx_state_dict(Path("embeddinggemma-300m-mlx"))
        >>> sd["dense.0.weight"].shape
        torch.Size([3072, 768])
    """
    layout = read_layout(path)  # validates headers and triplet shapes against config.json
    state: dict[str, torch.Tensor] = {}
    handles = {}
    try:
        for file in layout.files:
            handles[file] = safe_open(str(path / file), framework="pt")
        for tensor in layout.tensors:
            parts = [handles[p.file].get_tensor(p.name) for p in tensor.parts]
            if len(parts) == 3:
                spec = tensor.spec
                state[f"{tensor.name}.weight"] = dequantize(*parts, spec.bits, spec.group_size).to(dtype)
            else:
                value = parts[0]
                state[tensor.name] = value.to(dtype) if value.is_floating_point() else value
    finally:
        handles.clear()
    return state


def float_config(path: Path):
    """The transformers config of an MLX directory, without its quantization block."""
    from transformers import CONFIG_MAPPING

    data = {k: v for k, v in read_config(path).items() if k not in _QUANT_KEYS}
    model_type = data.get("model_type")
    if model_type not in CONFIG_MAPPING:
        raise LayerscopeError(f"{path}: config.json model_type {model_type!r} is not a transformers architecture")
    return CONFIG_MAPPING[model_type].from_dict(data)


def load_state(module: torch.nn.Module, state: dict[str, torch.Tensor], where: str) -> None:
    """Load ``state`` into ``module``; every parameter must be covered (tied weights may be absent)."""
    try:
        result = module.load_state_dict(state, strict=False)
    except RuntimeError as exc:  # shapes that do not fit the model built from config.json
        lines = [line.strip() for line in str(exc).splitlines() if "size mismatch" in line]
        raise LayerscopeError(f"{where}: its tensors do not fit {type(module).__name__}: {lines[:1] or exc}") from None
    tied = set()
    if getattr(module.config, "tie_word_embeddings", False):
        tied = {name for name in result.missing_keys if name.endswith("lm_head.weight")}
    buffers = {name for name, _ in module.named_buffers()}
    missing = [k for k in result.missing_keys if k not in tied and k not in buffers]
    if missing or result.unexpected_keys:
        what = f"missing {missing[:3]}" if missing else f"unexpected {result.unexpected_keys[:3]}"
        raise LayerscopeError(f"{where}: its tensors do not fit {type(module).__name__}: {what}")
    if tied:
        module.tie_weights()
    from .guard import check_weights

    check_weights(module, {}, where)


def load_mlx_causal_lm(path: Path, dtype: torch.dtype):
    """The ``*ForCausalLM`` module of an MLX directory, with dequantized float weights."""
    from transformers import AutoModelForCausalLM

    from .guard import check_config

    config = float_config(path)
    check_config(config, str(path), dtype)
    state = mlx_state_dict(path, dtype)
    head = sorted({k.split(".")[1] for k in state if _SENTENCE_HEAD.match(k)})
    if head:  # an embedding model (seed 003): its Dense stages belong to encode / stages, not to the LM view
        warnings.warn(
            f"{path.name}: the sentence-embedding Dense stages ({', '.join('dense.' + i for i in head)}) are not part "
            "of the language-model view; use 'layerscope encode' or 'stages' for the full pipeline",
            stacklevel=3,
        )
        state = {k: v for k, v in state.items() if not _SENTENCE_HEAD.match(k)}
    module = AutoModelForCausalLM.from_config(config, dtype=dtype)
    load_state(module, state, str(path))
    return module.eval()


def load_mlx_model(
    path: Path, source: str, fingerprint: str, dtype: torch.dtype, device=None, trust_remote_code: bool = False
):
    """A :class:`~layerscope.models.Model` from an MLX directory (its tokenizer files sit beside the weights).

    Example:
        >>> model = load_mlx_model(Path("llama-mlx-4bit"), "llama-mlx-4bit", "dir:...", torch.float32)
    """
    from transformers import AutoTokenizer

    from .broken import refused
    from .guard import check_directory
    from .model import Model

    check_directory(path, source, trust_remote_code)
    with progress.step(f"Loading {path.name} (MLX, dequantizing)"):
        with refused(f"the tokenizer of {source!r}"):
            tokenizer = AutoTokenizer.from_pretrained(str(path), trust_remote_code=trust_remote_code)
        with refused(f"model {source!r}"):
            module = load_mlx_causal_lm(path, dtype)
    if device is not None:
        module = module.to(device)
    from .loading import directory_name

    name = directory_name(path)
    return Model(module=module, tokenizer=tokenizer, source=source, fingerprint=fingerprint, name=name)
