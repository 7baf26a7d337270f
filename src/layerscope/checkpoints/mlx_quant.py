"""MLX affine quantization as stored on disk: the config block, and weight/scales/biases triplets.

MLX stores a quantized linear layer ``P`` as three tensors: ``P.weight`` (uint32, ``bits``-bit codes packed
into 32-bit words, shape ``(out, in * bits / 32)``), ``P.scales`` and ``P.biases`` (float, shape
``(out, in / group_size)``). ``config.json`` says how (mlx-lm writes it this way)::

    "quantization": {"group_size": 64, "bits": 4, "mode": "affine",
                     "model.layers.0.mlp.down_proj": {"group_size": 64, "bits": 8},   # per-layer override
                     "model.layers.1.mlp.up_proj": false}                              # left in float

Only headers are needed here: nothing in this module reads tensor data.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import LayerscopeError, choices_text
from .entries import LogicalTensor, TensorEntry

VALID_BITS = (2, 3, 4, 5, 6, 8)
VALID_GROUP_SIZES = (32, 64, 128)
TRIPLET = ("weight", "scales", "biases")
_FLOAT_DTYPES = ("F16", "BF16", "F32")


@dataclass(frozen=True)
class QuantSpec:
    """How one layer is quantized: ``bits`` per code, one scale and bias per ``group_size`` inputs."""

    bits: int
    group_size: int
    mode: str = "affine"
    inferred: bool = False

    @property
    def label(self) -> str:
        return f"{self.mode} {self.bits}-bit g{self.group_size}" + (" (inferred)" if self.inferred else "")


@dataclass(frozen=True)
class QuantConfig:
    """The ``quantization`` block of an MLX ``config.json``: a default spec and per-layer overrides."""

    default: QuantSpec | None
    overrides: dict  # module path -> QuantSpec, or None for a layer left unquantized

    def spec_for(self, path: str) -> QuantSpec | None:
        return self.overrides.get(path, self.default)


def parse_quantization(config: dict, where: str = "config.json") -> QuantConfig | None:
    """The quantization block of a config (``quantization`` or ``quantization_config``), or None if absent.

    Example:
        >>> parse_quantization({"quantization": {"group_size": 64, "bits": 8}}).default
        QuantSpec(bits=8, group_size=64, mode='affine', inferred=False)
    """
    block = config.get("quantization", config.get("quantization_config"))
    if block is None:
        return None
    if not isinstance(block, dict):
        raise LayerscopeError(f"{where}: 'quantization' must be an object, got {block!r}")
    default = _spec(block, where, "quantization") if "bits" in block or "group_size" in block else None
    overrides = {}
    for key, value in block.items():
        if key in ("bits", "group_size", "mode", "quant_method"):
            continue
        if value is False:
            overrides[key] = None
        elif isinstance(value, dict):
            overrides[key] = _spec(value, where, f"quantization[{key!r}]")
    return QuantConfig(default=default, overrides=overrides)


def _spec(block: dict, where: str, what: str) -> QuantSpec:
    bits, group_size, mode = block.get("bits"), block.get("group_size"), block.get("mode", "affine")
    if not isinstance(bits, int) or isinstance(bits, bool) or bits not in VALID_BITS:
        raise LayerscopeError(f"{where}: {what} has bits {bits!r}; valid: {choices_text(VALID_BITS)}")
    if not isinstance(group_size, int) or isinstance(group_size, bool) or group_size not in VALID_GROUP_SIZES:
        raise LayerscopeError(
            f"{where}: {what} has group_size {group_size!r}; valid: {choices_text(VALID_GROUP_SIZES)}"
        )
    if mode != "affine":
        raise LayerscopeError(f"{where}: {what} has mode {mode!r}; valid: 'affine'")
    return QuantSpec(bits=bits, group_size=group_size, mode=mode)


def unpacked_shape(path: str, weight: TensorEntry, scales: TensorEntry, spec: QuantSpec) -> tuple[int, ...]:
    """The float shape ``(..., out, in)`` a triplet dequantizes to; refuses a spec the packed shapes deny.

    ``in = packed_cols * 32 / bits`` and ``in / group_size`` must equal the number of scale columns.
    """
    packed = weight.shape[-1]
    groups = scales.shape[-1]
    n_in, rest = divmod(packed * 32, spec.bits)
    if rest or n_in % spec.group_size or n_in // spec.group_size != groups or weight.shape[:-1] != scales.shape[:-1]:
        raise LayerscopeError(
            f"{path}: {spec.bits}-bit codes in group size {spec.group_size} do not match the packed shapes: "
            f"weight {list(weight.shape)} (uint32) and scales {list(scales.shape)} "
            f"(expected scales [..., {packed * 32 / spec.bits / spec.group_size:g}])"
        )
    return (*weight.shape[:-1], n_in)


def infer_spec(weight: TensorEntry, scales: TensorEntry) -> QuantSpec | None:
    """Guess bits from shapes alone, assuming MLX's default group size 64 first (then 32, 128)."""
    packed, groups = weight.shape[-1], scales.shape[-1]
    for group_size in (64, 32, 128):
        if groups and (packed * 32) % (groups * group_size) == 0:
            bits = packed * 32 // (groups * group_size)
            if bits in VALID_BITS:
                return QuantSpec(bits=bits, group_size=group_size, inferred=True)
    return None


def is_triplet(by_name: dict, path: str) -> bool:
    """True when ``path.weight`` is uint32 and ``path.scales`` / ``path.biases`` exist beside it."""
    weight = by_name.get(f"{path}.weight")
    return (
        weight is not None
        and weight.dtype == "U32"
        and f"{path}.scales" in by_name
        and f"{path}.biases" in by_name
        and len(weight.shape) >= 2
    )


def _check_parts(by_name: dict, path: str) -> None:
    """A uint32 ``path.weight`` beside ``path.scales`` is a triplet: its biases must be there, its scales as deep."""
    weight, scales, biases = (by_name.get(f"{path}.{k}") for k in TRIPLET)
    if weight is None or scales is None or weight.dtype != "U32":
        return
    if biases is None:
        raise LayerscopeError(
            f"{path}: uint32 weight and scales are stored but {path}.biases is missing (affine MLX triplets have all three)"
        )
    if len(weight.shape) < 2 or len(scales.shape) != len(weight.shape):
        raise LayerscopeError(
            f"{path}: packed weight {list(weight.shape)} and scales {list(scales.shape)} must both be matrices "
            f"(..., out, columns) of the same rank"
        )


def group_logical(entries: list[TensorEntry], quant: QuantConfig | None) -> list[LogicalTensor]:
    """Stored entries -> logical tensors: each MLX triplet becomes one tensor named by its module path.

    Example:
        >>> [t.name for t in group_logical(entries, parse_quantization(config))][:1]
        ['dense.0']
    """
    by_name = {e.name: e for e in entries}
    consumed: set[str] = set()
    out = []
    for entry in entries:
        if entry.name in consumed:
            continue
        path, _, leaf = entry.name.rpartition(".")
        if leaf in TRIPLET:
            _check_parts(by_name, path)
        if leaf in TRIPLET and is_triplet(by_name, path):
            weight, scales, biases = (by_name[f"{path}.{k}"] for k in TRIPLET)
            spec = quant.spec_for(path) if quant is not None else None
            if quant is not None and path in quant.overrides and spec is None:
                raise LayerscopeError(f"{path}: config.json leaves it unquantized but it is stored as a uint32 triplet")
            spec = spec or infer_spec(weight, scales)
            if spec is None:
                raise LayerscopeError(
                    f"{path}: cannot tell bits and group size from weight {list(weight.shape)}, scales {list(scales.shape)}"
                )
            if biases.shape != scales.shape or scales.dtype not in _FLOAT_DTYPES:
                raise LayerscopeError(
                    f"{path}: scales {list(scales.shape)} {scales.dtype} and biases {list(biases.shape)} {biases.dtype} "
                    f"must share one shape and a float dtype ({', '.join(_FLOAT_DTYPES)})"
                )
            shape = unpacked_shape(path, weight, scales, spec)
            consumed.update(f"{path}.{k}" for k in TRIPLET)
            out.append(LogicalTensor(path, shape, f"U32+{scales.dtype}", spec.label, (weight, scales, biases), spec))
        else:
            quant_label = entry.dtype if entry.dtype.startswith(("Q", "IQ", "TQ")) else None
            out.append(LogicalTensor(entry.name, entry.shape, entry.dtype, quant_label, (entry,)))
    return out
