"""What a model's task asks for: the memory its forward pass needs, from its checkpoint's headers alone, and a
GPU when accelerate places it on one.

Example:
    >>> model_memory(ModelSpec())     # the default GGUF: its parameters as float32, plus RUNTIME_OVERHEAD
    >>> needs_gpu(ModelSpec("path/to/qwen3", device_map="auto"))
    True
"""

from __future__ import annotations

from ...errors import LayerscopeError
from ...model_spec import ModelSpec

#: bytes added to a model's weights for the Python process, torch and the forward's buffers
RUNTIME_OVERHEAD = 1 << 30
_DTYPE_BYTES = {"float32": 4, "bfloat16": 2, "float16": 2, "auto": 2, None: 4}


def model_source_path(spec: ModelSpec) -> str:
    if spec.source is None:
        from ...checkpoints.default import default_model_path

        return str(default_model_path())
    return spec.source


def model_memory(spec: ModelSpec) -> int:
    """Bytes a forward pass of ``spec``'s model needs, from its checkpoint's headers alone (no weights read).

    The header-only forward estimate of :mod:`layerscope.checkpoints.layout` where it has one, else the weights at
    the dtype they are loaded in (a GGUF is dequantized to float32); plus :data:`RUNTIME_OVERHEAD` for the
    process. A source whose headers cannot be read here (a model only the cluster's workers have) counts as the
    overhead alone.
    """
    try:
        source = model_source_path(spec)
    except LayerscopeError:
        return RUNTIME_OVERHEAD
    estimate = _forward_memory(source, spec.dtype or "float32")
    if estimate is None:
        estimate = _weights_memory(source, spec.dtype)
    return (estimate or 0) + RUNTIME_OVERHEAD


def _forward_memory(source: str, dtype: str) -> int | None:
    """``layerscope.checkpoints.layout.forward_memory`` (weights and capture buffers), when that exists."""
    from ...checkpoints import layout

    estimate = getattr(layout, "forward_memory", None)
    if estimate is None:
        return None
    try:
        value = estimate(source, dtype, batch=1)
    except (LayerscopeError, OSError, ValueError, TypeError):
        return None
    for name in ("total", "total_bytes", "bytes"):
        if isinstance(getattr(value, name, None), int):
            return int(getattr(value, name))
    return int(value) if isinstance(value, int) else None


def _weights_memory(source: str, dtype: str | None) -> int | None:
    from ...checkpoints.layout import read_layout

    try:
        found = read_layout(source)
    except (LayerscopeError, OSError, ValueError):
        return None
    per_parameter = 4 if found.format.startswith("gguf") else _DTYPE_BYTES.get(dtype, 4)
    return found.n_parameters * per_parameter


def needs_gpu(spec: ModelSpec) -> bool:
    """True when the model is placed by accelerate (``device_map``) somewhere other than the CPU or disk."""
    return spec.device_map is not None and str(spec.device_map).lower() not in ("cpu", "disk")
