"""What a header tells about one stored tensor, and about one logical (possibly quantized) tensor."""

from __future__ import annotations

from dataclasses import dataclass, field
from math import prod


@dataclass(frozen=True)
class TensorEntry:
    """One tensor as stored in a checkpoint file (nothing of its data is read).

    Attributes:
        name: the stored name, e.g. ``"model.layers.0.mlp.up_proj.weight"``.
        shape: the stored shape in row-major (numpy / torch) order.
        dtype: the stored type: a safetensors dtype (``"F16"``, ``"U32"``) or a GGML type (``"Q4_K"``).
        nbytes: bytes the data takes in the file.
        file: the file name (relative to the checkpoint directory) holding it.
        offset: where its data starts in the file, in bytes (a safetensors file's entries; else None).
    """

    name: str
    shape: tuple[int, ...]
    dtype: str
    nbytes: int
    file: str
    offset: int | None = None

    @property
    def numel(self) -> int:
        return prod(self.shape)


@dataclass(frozen=True)
class LogicalTensor:
    """A tensor as the model sees it: a plain stored tensor, or an MLX triplet shown as one.

    Attributes:
        name: ``"model.layers.0.mlp.up_proj.weight"`` for a plain tensor, the module path
            (``"dense.0"``) for an MLX-quantized linear layer.
        shape: the logical (unpacked) shape, e.g. ``(3072, 768)``.
        dtype: the stored dtype (plain), or ``"U32+F16"`` for a triplet.
        quant: ``None``, or a short label such as ``"affine 8-bit g64"`` (MLX) or ``"Q4_K"`` (GGUF).
        parts: the stored tensors behind it (one, or weight/scales/biases).
        spec: the :class:`~layerscope.checkpoints.mlx_quant.QuantSpec` of an MLX triplet, else None.
    """

    name: str
    shape: tuple[int, ...]
    dtype: str
    quant: str | None
    parts: tuple[TensorEntry, ...] = field(default=())
    spec: object = None

    @property
    def numel(self) -> int:
        return prod(self.shape)

    @property
    def nbytes(self) -> int:
        return sum(p.nbytes for p in self.parts)

    def signature(self, prefix: str) -> tuple:
        """Name relative to ``prefix``, shape, dtype and quantization: equal signatures fold together."""
        return (self.name[len(prefix) :], self.shape, self.dtype, self.quant)
