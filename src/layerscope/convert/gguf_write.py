"""Re-quantize a GGUF file to another type with the ``gguf`` package's own quantizer.

Every weight matrix (a tensor of two or more dimensions) of the source is dequantized with
``gguf.quants.dequantize`` and quantized again with ``gguf.quants.quantize`` to the target type; vectors (norms,
biases) keep their stored type, as llama.cpp's ``quantize`` keeps them. A matrix whose rows do not divide into
the target's blocks is stored as F16 (and counted in the summary). The metadata (architecture, hyperparameters,
tokenizer) is copied key by key with its value types; ``general.file_type`` is set to the target's. Tensors
are written one at a time: the source is memory-mapped and at most one tensor is held in float32.

With a recipe (:class:`~layerscope.convert.recipe.Recipe`) the target is its base type, and each module it names
(a Hugging Face path, mapped to the GGUF tensor name by gguf's tensor name map for the file's architecture) is
quantized to its own type.
"""

from __future__ import annotations

import functools
from math import prod
from pathlib import Path

import numpy as np

from ..errors import LayerscopeError, choices_text


@functools.cache
def gguf_types() -> tuple[str, ...]:
    """The GGML types ``gguf.quants.quantize`` can write (probed on one block each): for gguf 0.19, F32, F16,
    BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, TQ1_0, TQ2_0, MXFP4."""
    from gguf import GGML_QUANT_SIZES, GGMLQuantizationType
    from gguf.quants import dequantize, quantize

    found = []
    for qtype in GGMLQuantizationType:
        block = GGML_QUANT_SIZES[qtype][0]
        sample = np.linspace(-1, 1, 2 * block, dtype=np.float32).reshape(2, block)
        try:
            dequantize(quantize(sample, qtype), qtype)
        except (NotImplementedError, ValueError, TypeError, KeyError, AttributeError):
            continue
        found.append(qtype.name)
    return tuple(found)


def check_gguf_type(name: str) -> None:
    from ..experiment import ConfigError

    if name not in gguf_types():
        raise ConfigError(
            "type", name, f"is not a type the gguf package quantizes to; valid: {choices_text(gguf_types())}"
        )


def _file_type(qtype_name: str) -> int | None:
    from gguf import LlamaFileType

    if qtype_name == "F32":
        return int(LlamaFileType.ALL_F32)
    member = getattr(LlamaFileType, f"MOSTLY_{qtype_name}", None)
    return None if member is None else int(member)


def _copy_metadata(reader, writer, qtype_name: str) -> None:
    from gguf import GGUFValueType

    file_type = _file_type(qtype_name)
    for field in reader.fields.values():
        if field.name.startswith("GGUF.") or field.name == "general.architecture":
            continue  # the header's own counts, and the architecture the writer already wrote
        if field.name == "general.alignment":
            writer.data_alignment = int(field.contents())
        main = field.types[0]
        if field.name == "general.file_type" and file_type is not None:
            writer.add_key_value(field.name, file_type, main)
            continue
        if main == GGUFValueType.ARRAY and len(field.types) > 2:
            raise LayerscopeError(f"GGUF metadata {field.name!r} is an array of arrays, which cannot be copied")
        sub = field.types[-1] if main == GGUFValueType.ARRAY else None
        writer.add_key_value(field.name, field.contents(), main, sub_type=sub)
    if file_type is not None and "general.file_type" not in reader.fields:
        writer.add_key_value("general.file_type", file_type, GGUFValueType.UINT32)


def recipe_tensor_types(recipe, reader, source_name: str) -> dict[str, object]:
    """``{GGUF tensor name: GGMLQuantizationType}`` of the recipe's modules in the file ``reader`` reads; a module
    the file does not hold as a matrix that divides into its type's blocks is refused in one line."""
    from gguf import GGML_QUANT_SIZES, GGMLQuantizationType

    from .recipe import gguf_name_or_none, unknown_modules_error

    arch, n_blocks = gguf_arch_and_blocks(reader)
    by_name = {t.name: t for t in reader.tensors}
    types, missing = {}, []
    for item in recipe.overrides:
        base = gguf_name_or_none(item.module, arch, n_blocks)
        name = None if base is None else f"{base}.weight"
        if name not in by_name:
            missing.append(item.module)
            continue
        tensor, qtype = by_name[name], GGMLQuantizationType[item.type]
        block = GGML_QUANT_SIZES[qtype][0]
        row = int(tensor.shape[0])  # GGUF order: the row (input) width first
        if len(tensor.shape) < 2:
            raise LayerscopeError(f"recipe module {item.module!r} ({name}) is a vector, not a weight matrix")
        if row % block:
            raise LayerscopeError(
                f"recipe module {item.module!r} ({name}): rows of {row} values do not divide into {item.type}'s "
                f"blocks of {block}; choose another type for it"
            )
        types[name] = qtype
    if missing:
        raise unknown_modules_error(missing, [], f"{source_name} ({arch}, {n_blocks} blocks)")
    return types


def gguf_arch_and_blocks(reader) -> tuple[str, int]:
    """The architecture name and block count a GGUF file's metadata gives."""
    arch = str(reader.fields["general.architecture"].contents())
    field = reader.fields.get(f"{arch}.block_count")
    if field is None:
        raise LayerscopeError(f"GGUF metadata has no {arch}.block_count; cannot name the recipe's tensors")
    return arch, int(field.contents())


def _plan(tensor, target):
    """``(type, stored shape, numpy dtype, nbytes)`` of one output tensor."""
    from gguf import GGML_QUANT_SIZES, GGMLQuantizationType

    shape = tuple(int(n) for n in reversed(tensor.shape.tolist()))  # numpy order: (rows, columns)
    if len(shape) < 2:
        qtype = tensor.tensor_type
    else:
        block = GGML_QUANT_SIZES[target][0]
        qtype = target if shape[-1] % block == 0 else GGMLQuantizationType.F16
    block, type_size = GGML_QUANT_SIZES[qtype]
    nbytes = prod(shape) // block * type_size
    if qtype in (GGMLQuantizationType.F32, GGMLQuantizationType.F16):
        return qtype, shape, np.dtype(np.float32 if qtype == GGMLQuantizationType.F32 else np.float16), nbytes
    if len(shape) < 2 and qtype == tensor.tensor_type:  # kept as stored: its raw bytes
        return qtype, tuple(tensor.data.shape), tensor.data.dtype, nbytes
    byte_shape = (*shape[:-1], shape[-1] // block * type_size)
    return qtype, byte_shape, np.dtype(np.uint8), nbytes


#: the largest finite float16: GGUF's F16 values and the block scales of its quantized types are float16
F16_MAX = 65504.0


def _check_finite(name: str, values: np.ndarray, data: np.ndarray, qtype) -> None:
    """Refuse a tensor whose finite values the target type turns infinite (F16 values, or float16 block scales,
    past 65504): checked by dequantizing again, only when some value is that large."""
    from gguf.quants import dequantize

    if values.size == 0 or float(np.abs(values).max()) <= F16_MAX / 2:
        return
    if not np.isfinite(values).all():
        raise LayerscopeError(f"{name} holds values that are not finite (inf or NaN); it cannot be quantized")
    if not np.isfinite(dequantize(data, qtype)).all():
        raise LayerscopeError(
            f"{name} has values up to {float(np.abs(values).max()):.4g}, beyond what {qtype.name} holds (its float16 "
            "values or scales end at 65504); choose --type BF16 or F32"
        )


def write_gguf(source: Path, out: Path, type_name: str, description: str = "Quantizing", recipe=None) -> dict:
    """Write ``out`` (a new file) from the GGUF file ``source``, its matrices re-quantized to ``type_name`` (with
    ``recipe``: to the recipe's base type, and its modules to their own types).

    Returns a summary: ``{"type", "quantized", "kept", "fallback_f16", "bytes"}``; with a recipe also
    ``overridden`` (tensors of a recipe's type), ``gguf_arch`` and ``n_blocks``.

    Example:
        >>> write_gguf(default_model_path(), Path("q8.gguf"), "Q8_0")["quantized"]
        127
    """
    import gguf
    from gguf.quants import dequantize, quantize

    if recipe is not None:
        type_name = recipe.type
    check_gguf_type(type_name)
    target = gguf.GGMLQuantizationType[type_name]
    from .. import progress

    try:
        with progress.step(f"Reading {source.name}"):  # its metadata arrays are parsed in Python (seconds)
            reader = gguf.GGUFReader(str(source))
            arch = reader.fields["general.architecture"].contents()
    except (ValueError, KeyError, OSError, IndexError) as exc:
        raise LayerscopeError(f"cannot read GGUF file {str(source)!r}: {exc}") from None
    overrides = recipe_tensor_types(recipe, reader, source.name) if recipe is not None else {}
    writer = gguf.GGUFWriter(str(out), arch)
    _copy_metadata(reader, writer, type_name)
    plans = []
    counts = {"quantized": 0, "kept": 0, "fallback_f16": 0}
    if recipe is not None:
        counts["overridden"] = len(overrides)
    for tensor in reader.tensors:
        qtype, shape, dtype, nbytes = _plan(tensor, overrides.get(tensor.name, target))
        writer.add_tensor_info(tensor.name, shape, dtype, nbytes, raw_dtype=qtype)
        plans.append((tensor, qtype))
        if len(tensor.shape) < 2:
            counts["kept"] += 1
        elif qtype == target or tensor.name in overrides:
            counts["quantized"] += 1
        else:
            counts["fallback_f16"] += 1
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_ti_data_to_file()
    try:
        for tensor, qtype in progress.track(plans, description):
            if len(tensor.shape) < 2 and qtype == tensor.tensor_type:
                data = np.asarray(tensor.data)
            else:
                values = dequantize(np.asarray(tensor.data), tensor.tensor_type).astype(np.float32, copy=False)
                data = quantize(values, qtype)
                _check_finite(tensor.name, values, data, qtype)
                del values
            writer.write_tensor_data(data)
            del data
    finally:
        writer.close()
    if recipe is not None:
        counts["gguf_arch"], counts["n_blocks"] = gguf_arch_and_blocks(reader)
    return {"type": type_name, **counts, "bytes": out.stat().st_size}
