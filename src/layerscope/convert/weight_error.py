"""Weight-level error between two forms of one model, from the checkpoints alone (no forward pass).

For each tensor present in both (by its Hugging Face name), with ``a`` the reference's float32 values and ``b``
the other's: ``relative_error = ||a - b|| / ||a||`` (Frobenius norms), ``cosine = <a, b> / (||a|| ||b||)`` and
``max_abs_error = max |a - b|``, accumulated in float64. Tensors are read one at a time from each side
(a quantized side dequantized: MLX triplets bit-exact with ``mlx.core.dequantize``, GGUF through transformers'
dequantization), so two whole models are never held together.

Example:
    >>> errors = weight_errors("default", "runs/gemma-mlx-4bit")
    >>> errors.groupby("layer", sort=False)["relative_error"].max().head(3)
"""

from __future__ import annotations

import itertools
import math
import re

import torch

from ..capture.layer_spec import EMBED, FINAL_NORM
from ..errors import LayerscopeError
from .float_weights import open_float_weights

_CHUNK = 1 << 20
COLUMNS = ("tensor", "layer", "shape", "parameters", "relative_error", "cosine", "max_abs_error")

_BLOCK = re.compile(r"(?:^|\.)(?:layers|layer|h|blocks|block)\.(\d+)\.")
_EMBED = re.compile(r"(?:^|\.)(?:embed_tokens|wte|wpe|word_embeddings|embed_in|embed_positions|tok_embeddings)\.")
_NORM = re.compile(
    r"^(?:(?:model|transformer|gpt_neox|model\.decoder)\.)?(?:norm|ln_f|final_layer_norm|final_layernorm)\."
)


def tensor_layer(name: str) -> str | None:
    """The point of the residual stream a tensor belongs to: ``embed`` (embedding tables), the block number
    ``k`` as text (``model.layers.k.``), ``norm`` (the final norm), or None (e.g. a separate LM head).

    Example:
        >>> [tensor_layer(n) for n in ("model.embed_tokens.weight", "model.layers.3.mlp.up_proj.weight",
        ...                            "model.norm.weight", "lm_head.weight")]
        ['embed', '3', 'norm', None]
    """
    block = _BLOCK.search(name)
    if block:
        return str(int(block.group(1)))
    if _EMBED.search(name):
        return EMBED
    if _NORM.match(name):
        return FINAL_NORM
    return None


def _depth_key(layer: str | None) -> tuple[int, int]:
    if layer == EMBED:
        return (0, 0)
    if layer == FINAL_NORM:
        return (2, 0)
    return (1, int(layer)) if layer is not None else (3, 0)


def tensor_error(a: torch.Tensor, b: torch.Tensor) -> dict:
    """``relative_error``, ``cosine`` and ``max_abs_error`` of ``b`` against ``a``, summed in float64 over chunks
    of about a million values (so a large matrix is never copied whole in float64).

    A zero reference gives relative error 0 when ``b`` is zero too, else NaN; a zero side gives cosine NaN.
    """
    flat_a, flat_b = a.reshape(-1), b.reshape(-1)
    pieces = ((flat_a[i : i + _CHUNK], flat_b[i : i + _CHUNK]) for i in range(0, flat_a.numel(), _CHUNK))
    return pieces_error(pieces)


def pieces_error(pieces) -> dict:
    """:func:`tensor_error` of two tensors given as ``(a piece, the same piece of b)`` pairs of flat tensors (each
    summed in float64), so that neither tensor is ever held whole."""
    aa = bb = dd = ab = max_abs = 0.0
    for piece_a, piece_b in pieces:
        if not piece_a.numel():
            continue
        x = piece_a.to(torch.float64)
        y = piece_b.to(torch.float64)
        d = x - y
        aa += torch.dot(x, x).item()
        bb += torch.dot(y, y).item()
        dd += torch.dot(d, d).item()
        ab += torch.dot(x, y).item()
        max_abs = max(max_abs, torch.linalg.vector_norm(d, float("inf")).item())
    norm_a, norm_b, norm_d = aa**0.5, bb**0.5, dd**0.5
    if norm_a > 0:
        relative = norm_d / norm_a
    else:
        relative = 0.0 if norm_d == 0 else float("nan")
    cosine = ab / (norm_a * norm_b) if norm_a > 0 and norm_b > 0 else float("nan")
    return {"relative_error": relative, "cosine": cosine, "max_abs_error": max_abs}


def weight_errors(reference, other):
    """Per-tensor weight error of ``other`` against ``reference``, one row per float tensor present in both.

    Args:
        reference, other: any source :func:`~layerscope.load_model` takes (None / ``"default"``, a ``.gguf``
            file, a Hugging Face or MLX directory, a cached hub id), a :class:`~layerscope.ModelSpec`, or a
            loaded :class:`~layerscope.Model`.

    Returns:
        A pandas DataFrame with columns ``tensor`` (the Hugging Face name), ``layer`` (``embed``, ``0``..``n-1``,
        ``norm``, or None for tensors outside the residual stream's points, such as a separate LM head),
        ``shape`` (``"262144x640"``), ``parameters``, ``relative_error``, ``cosine``, ``max_abs_error``;
        sorted by layer (``embed``, blocks in order, ``norm``, then the others) and name. A tensor whose shapes differ is refused (one line): weight error
        compares two forms of one model.
    """
    import pandas as pd

    rows = []
    with open_float_weights(reference) as ref, open_float_weights(other) as oth:
        common = [name for name in ref.names if name in oth.shapes]
        if not common:
            raise LayerscopeError(
                f"{ref.source} and {oth.source} share no tensor names; weight error compares two forms of one model"
            )
        for name in common:
            if ref.shapes[name] != oth.shapes[name]:
                raise LayerscopeError(
                    f"{name} has shape {list(ref.shapes[name])} in {ref.source} but {list(oth.shapes[name])} in "
                    f"{oth.source}; weight error compares two forms of one model"
                )
            pieces = zip(ref.chunks(name, _CHUNK), oth.chunks(name, _CHUNK))  # never a whole tensor in memory
            first = next(pieces)
            if not first[0].is_floating_point():
                continue
            shape = tuple(ref.shapes[name])
            rows.append(
                {
                    "tensor": name,
                    "layer": tensor_layer(name),
                    "shape": "x".join(map(str, shape)),
                    "parameters": math.prod(shape),
                    **pieces_error(itertools.chain([first], pieces)),
                }
            )
    rows.sort(key=lambda row: (_depth_key(row["layer"]), row["tensor"]))
    frame = pd.DataFrame(rows, columns=list(COLUMNS))
    frame["layer"] = frame["layer"].astype(object)
    return frame
