"""MLX affine dequantization in torch, bit-exact with ``mlx.core.dequantize``.

MLX packs ``bits``-bit codes into a little-endian bit stream stored as uint32 words: code ``i`` of a row
occupies bits ``[i * bits, (i + 1) * bits)`` of the row's bytes. Eight codes therefore fill exactly ``bits``
bytes, for every width (2, 3, 4, 5, 6, 8). Each group of ``group_size`` codes has a scale and a bias:
``w = scale * q + bias``, computed in the scales' dtype (a rounding after the product and after the sum,
as MLX does).
"""

from __future__ import annotations

import torch

from ..checkpoints.mlx_quant import VALID_BITS
from ..errors import LayerscopeError

_CHUNK_VALUES = 1 << 24  # rows are unpacked in chunks of about this many codes, to bound memory


def unpack_codes(packed: torch.Tensor, bits: int) -> torch.Tensor:
    """Codes from packed uint32 words: ``(..., n_words)`` -> ``(..., n_words * 32 / bits)`` in ``[0, 2**bits)``
    (uint8 for 2, 4, 8 bits, int64 for 3, 5, 6).

    Example:
        >>> unpack_codes(torch.tensor([[0x76543210]], dtype=torch.uint32), 4)
        tensor([[0, 1, 2, 3, 4, 5, 6, 7]], dtype=torch.uint8)
    """
    if bits not in VALID_BITS:
        raise LayerscopeError(f"unsupported bits {bits}; valid: {', '.join(map(str, VALID_BITS))}")
    n_words = packed.shape[-1]
    as_uint8 = packed.contiguous().view(torch.uint8)  # (..., n_words * 4), little-endian
    if 8 % bits == 0:  # 2, 4, 8 bits: whole codes inside each byte, lowest bits first
        if bits == 8:
            return as_uint8
        shifts = torch.arange(0, 8, bits, dtype=torch.uint8)
        codes = torch.bitwise_right_shift(as_uint8.unsqueeze(-1), shifts) & ((1 << bits) - 1)
        return codes.reshape(*packed.shape[:-1], -1)
    pack_bytes = bits  # 3, 5, 6 bits: eight codes fill ``bits`` bytes
    if (n_words * 4) % pack_bytes:
        raise LayerscopeError(f"{n_words} uint32 words per row cannot hold whole groups of {bits}-bit codes")
    as_bytes = as_uint8.to(torch.int64)
    packs = as_bytes.reshape(*packed.shape[:-1], -1, pack_bytes)  # (..., n_packs, pack_bytes)
    byte_shifts = 8 * torch.arange(pack_bytes, dtype=torch.int64)
    words = torch.bitwise_left_shift(packs, byte_shifts).sum(-1)  # (..., n_packs), below 2**48
    code_shifts = bits * torch.arange(pack_bytes * 8 // bits, dtype=torch.int64)
    codes = torch.bitwise_right_shift(words.unsqueeze(-1), code_shifts) & ((1 << bits) - 1)  # (..., n_packs, codes)
    return codes.reshape(*packed.shape[:-1], -1)


def dequantize(
    weight: torch.Tensor, scales: torch.Tensor, biases: torch.Tensor, bits: int, group_size: int
) -> torch.Tensor:
    """The float matrix of an MLX affine triplet, equal to ``mlx.core.dequantize`` bit for bit.

    Args:
        weight: packed codes, uint32 ``(..., out, in * bits / 32)``.
        scales, biases: ``(..., out, in / group_size)``, float16 / bfloat16 / float32.
    Returns:
        ``(..., out, in)`` in the dtype of ``scales``.

    Example:
        >>> w = dequantize(weight, scales, biases, bits=8, group_size=64)   # (3072, 768) float16
    """
    if weight.dtype != torch.uint32:
        raise LayerscopeError(f"packed weight must be uint32, got {weight.dtype}")
    n_in = weight.shape[-1] * 32 // bits
    groups = scales.shape[-1]
    if (weight.shape[-1] * 32) % bits or n_in != groups * group_size or biases.shape != scales.shape:
        raise LayerscopeError(
            f"{bits}-bit codes in group size {group_size} do not match the packed shapes: "
            f"weight {list(weight.shape)}, scales {list(scales.shape)}, biases {list(biases.shape)}"
        )
    lead = weight.shape[:-1]
    flat_w = weight.reshape(-1, weight.shape[-1])
    flat_s = scales.reshape(-1, groups)
    flat_b = biases.reshape(-1, groups)
    out = torch.empty((flat_w.shape[0], n_in), dtype=scales.dtype)
    step = max(1, _CHUNK_VALUES // max(n_in, 1))
    for start in range(0, flat_w.shape[0], step):
        rows = slice(start, start + step)
        codes = unpack_codes(flat_w[rows], bits).to(scales.dtype).reshape(-1, groups, group_size)
        scaled = codes * flat_s[rows].unsqueeze(-1)  # rounded to the scales' dtype
        out[rows] = (scaled + flat_b[rows].unsqueeze(-1)).reshape(-1, n_in)
    return out.reshape(*lead, n_in)
