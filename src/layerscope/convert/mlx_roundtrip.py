"""A model's weights as an MLX-quantized file holds them, in memory: quantized by ``mlx.core.quantize`` and read back
by ``mlx.core.dequantize``, as ``quantize --to mlx`` writes them and ``load_model`` reads them; and their sizes.

Each weight mlx-lm quantizes (see :func:`~layerscope.convert.mlx_write.quantizes`) is cast to the conversion
dtype, quantized and dequantized to float32; every other floating tensor is cast to that dtype and back (the
file stores it so). Sizes count what the file stores: ``bits`` per weight plus one scale and one bias per group,
in the conversion dtype.

Example:
    >>> values = mlx_roundtrip(model, bits=4, group_size=64)     # {parameter name: float32 tensor}
    >>> mlx_bytes((1024, 640), bits=8, group_size=64)
    696320
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import torch

from .mlx_write import check_mlx_options, conversion_dtype, quantizes, require_mlx

#: bytes of one scale or bias per dtype
DTYPE_BYTES = {"float16": 2, "bfloat16": 2, "float32": 4}


def mlx_bytes(shape: tuple[int, ...], bits: int, group_size: int, dtype: str = "float16") -> int:
    """Bytes an MLX file stores for a weight of ``shape`` quantized at ``bits`` (codes, scales and biases)."""
    n = int(np.prod(shape))
    return n * bits // 8 + 2 * (n // group_size) * DTYPE_BYTES[dtype]


def model_dtype(model, dtype: str | None = None) -> str:
    """The dtype ``quantize`` casts this model's weights to: ``dtype``, else its config's, else float16."""
    config = model.config.to_dict() if hasattr(model.config, "to_dict") else dict(model.config)
    return conversion_dtype(config, dtype)


def quantized_names(model, group_size: int) -> list[str]:
    """The parameters mlx-lm quantizes at ``group_size`` (a tied output embedding is the input embedding)."""
    return [n for n, p in model.module.named_parameters() if quantizes(n, tuple(p.shape), group_size)]


def mlx_weight(weight: torch.Tensor, bits: int, group_size: int, dtype: str = "float16") -> torch.Tensor:
    """``weight`` ``(out, in)`` quantized by ``mlx.core.quantize`` and dequantized, float32 on its device."""
    import mlx.core as mx

    array = mx.array(weight.detach().float().cpu().numpy()).astype(getattr(mx, dtype))
    q, s, b = mx.quantize(array, group_size, bits)
    back = mx.dequantize(q, s, b, group_size, bits).astype(mx.float32)
    return torch.from_numpy(np.array(back)).to(weight.device)


def cast_roundtrip(value: torch.Tensor, dtype: str) -> torch.Tensor:
    """``value`` as a file of ``dtype`` stores it, back in float32."""
    return value.detach().to(getattr(torch, dtype)).float()


def mlx_roundtrip(
    model,
    bits: int,
    group_size: int,
    dtype: str | None = None,
    *,
    overrides: dict[str, int] | None = None,
    names: Iterable[str] | None = None,
    tensors: dict[str, torch.Tensor] | None = None,
) -> dict[str, torch.Tensor]:
    """``{parameter name: float32 tensor}``: every floating parameter of ``model`` (or of ``names``) as an MLX
    file quantized at ``bits`` (``overrides``: other bits for some parameters) holds it; a parameter the file
    holds exactly is left out. ``tensors``: the values to quantize where not the parameters' own."""
    require_mlx()
    check_mlx_options(bits, group_size, dtype)
    dtype = model_dtype(model, dtype)
    overrides = overrides or {}
    params = dict(model.module.named_parameters())
    out = {}
    for name in params if names is None else names:
        value = params[name] if tensors is None or name not in tensors else tensors[name]
        if not value.is_floating_point():
            continue
        if quantizes(name, tuple(value.shape), group_size):
            out[name] = mlx_weight(value, overrides.get(name, bits), group_size, dtype)
        else:
            cast = cast_roundtrip(value, dtype)
            if not torch.equal(cast, value.detach().float()):
                out[name] = cast
    return out
