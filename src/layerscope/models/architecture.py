"""Find the parts of any Hugging Face causal LM: decoder layers, final norm, embeddings.

No per-model if-ladder: the base model comes from ``module.base_model`` (transformers'
own ``base_model_prefix``), the layer stack is its ``nn.ModuleList`` as long as
``num_hidden_layers``, and the final norm is looked up in one table of attribute names.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from ..errors import LayerscopeError

# Attribute names of the final normalization on the base model, across families:
# Llama/Gemma/Qwen/OLMo/gpt-oss use ``norm``; GPT-2/GPT-J/Bloom ``ln_f``; Phi ``final_layernorm``;
# GPT-NeoX ``final_layer_norm``; OPT keeps it under ``decoder``.
FINAL_NORM_NAMES = ("norm", "ln_f", "final_layernorm", "final_layer_norm", "final_norm", "decoder.final_layer_norm")


@dataclass(frozen=True)
class Parts:
    """The modules layerscope hooks into, for one causal LM.

    Attributes:
        base: the decoder stack without the LM head (``model.model`` for Llama-likes).
        layers: the decoder layers in order; ``len(layers) == n_layers``.
        final_norm: the norm applied after the last layer, or None when the model has none.
        embed: the input embedding module (weight shape ``(vocab, d_model)``).
        unembed: the output projection (weight shape ``(vocab, d_model)``), or None.
        layers_path: dotted name of ``layers`` inside the top module, e.g. ``"model.layers"``.
    """

    base: nn.Module
    layers: nn.ModuleList
    final_norm: nn.Module | None
    embed: nn.Module
    unembed: nn.Module | None
    layers_path: str


def _get(module: nn.Module, dotted: str) -> nn.Module | None:
    for name in dotted.split("."):
        module = getattr(module, name, None)
        if module is None:
            return None
    return module


def find_parts(module: nn.Module, n_layers: int) -> Parts:
    """Locate the decoder layers, final norm, input embedding and unembedding of ``module``.

    Example:
        >>> parts = find_parts(hf_model, hf_model.config.num_hidden_layers)
        >>> len(parts.layers) == hf_model.config.num_hidden_layers
        True
    """
    base = module.base_model
    candidates = [
        (name, child)
        for name, child in base.named_modules()
        if isinstance(child, nn.ModuleList) and len(child) == n_layers and name.count(".") <= 1
    ]
    if not candidates:
        raise LayerscopeError(
            f"cannot find the decoder layers of {type(module).__name__}: no nn.ModuleList of "
            f"{n_layers} layers (num_hidden_layers) under its base model {type(base).__name__}"
        )
    layers_name, layers = min(candidates, key=lambda item: item[0].count("."))
    final_norm = next((m for m in (_get(base, n) for n in FINAL_NORM_NAMES) if m is not None), None)
    prefix = "" if base is module else _path_of(module, base)
    layers_path = f"{prefix}.{layers_name}" if prefix else layers_name
    return Parts(
        base=base,
        layers=layers,
        final_norm=final_norm,
        embed=module.get_input_embeddings(),
        unembed=module.get_output_embeddings(),
        layers_path=layers_path,
    )


def _path_of(root: nn.Module, target: nn.Module) -> str:
    for name, child in root.named_modules():
        if child is target:
            return name
    return ""
