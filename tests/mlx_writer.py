"""Write MLX-quantized directories for tests, quantizing with ``mlx.core.quantize`` itself (the oracle)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import torch

mx = __import__("pytest").importorskip("mlx.core")


def mlx_quantize(weight: torch.Tensor, bits: int, group_size: int, dtype=None):
    """``(packed uint32, scales, biases, dequantized float32)`` from MLX for a float matrix."""
    dtype = dtype or mx.float16
    w = mx.array(weight.detach().float().numpy()).astype(dtype)
    q, s, b = mx.quantize(w, group_size, bits)
    deq = mx.dequantize(q, s, b, group_size, bits).astype(mx.float32)
    return np.array(q), np.array(s), np.array(b), torch.from_numpy(np.array(deq))


def save_mlx_dir(
    state: dict[str, torch.Tensor],
    config: dict,
    out: Path,
    quantized: dict[str, tuple[int, int]],
    copy_from: Path | None = None,
    quantization: dict | None = None,
) -> dict[str, torch.Tensor]:
    """Save ``state`` with the modules in ``quantized`` (``{module path: (bits, group_size)}``) as MLX triplets.

    Returns the state dict with those weights replaced by ``mlx.core.dequantize`` of what was stored.
    """
    from safetensors.numpy import save_file

    out.mkdir(parents=True, exist_ok=True)
    if copy_from is not None:
        for item in copy_from.iterdir():
            if item.is_file() and not item.name.endswith(".safetensors") and item.name != "config.json":
                shutil.copy(item, out / item.name)
    arrays, dequantized = {}, {}
    for name, value in state.items():
        module = name.rpartition(".")[0]
        if name.endswith(".weight") and module in quantized:
            bits, group = quantized[module]
            q, s, b, deq = mlx_quantize(value, bits, group)
            arrays[f"{module}.weight"], arrays[f"{module}.scales"], arrays[f"{module}.biases"] = q, s, b
            dequantized[name] = deq
        else:
            arrays[name] = value.detach().to(torch.float16).float().numpy().astype(np.float16)
            dequantized[name] = value.detach().to(torch.float16).float()
    save_file(arrays, str(out / "model.safetensors"), metadata={"format": "mlx"})
    (out / "config.json").write_text(json.dumps({**config, "quantization": quantization}))
    return dequantized
