"""Header-only reading of checkpoints: safetensors (single and sharded), GGUF, and MLX-quantized layouts."""

from .entries import LogicalTensor, TensorEntry
from .layout import ForwardMemory, Layout, forward_memory, memory_estimate, read_layout
from .mlx_quant import QuantConfig, QuantSpec, parse_quantization
from .tree import build_tree, tree_lines

__all__ = [
    "ForwardMemory",
    "Layout",
    "LogicalTensor",
    "QuantConfig",
    "QuantSpec",
    "TensorEntry",
    "build_tree",
    "forward_memory",
    "memory_estimate",
    "parse_quantization",
    "read_layout",
    "tree_lines",
]
