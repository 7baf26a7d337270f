"""Find the parts of any Hugging Face causal LM: decoder layers, final norm, embeddings.

No per-model if-ladder: the text decoder comes from transformers' own ``get_decoder()`` (through
multimodal wrappers), the layer stack is its ``nn.ModuleList`` as long as ``num_hidden_layers``, and
the final norm is first looked up in one table of attribute names, then checked (and, where the
table misses it, found) by what the model applies between its last block and its head (:mod:`.head`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
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


def _decoder(module: nn.Module) -> nn.Module:
    """The text decoder: transformers' own ``get_decoder()`` (the language model of a multimodal wrapper, the
    decoder of an encoder-decoder's causal LM), else the base model."""
    base = module.base_model
    for owner in (module, base):
        getter = getattr(owner, "get_decoder", None)
        try:
            decoder = getter() if getter is not None else None
        except Exception:  # noqa: BLE001 - transformers raises for the models it has no rule for
            decoder = None
        if isinstance(decoder, nn.Module) and decoder is not module:
            return decoder
    return base


def _layer_lists(root: nn.Module, max_dots: int) -> list[tuple[str, nn.ModuleList]]:
    return [
        (name, child)
        for name, child in root.named_modules()
        if isinstance(child, nn.ModuleList) and len(child) > 0 and name and name.count(".") <= max_dots
    ]


def find_parts(module: nn.Module, n_layers: int) -> Parts:
    """Locate the decoder layers, final norm, input embedding and unembedding of ``module``.

    The layers are the ``nn.ModuleList`` of the text decoder (``get_decoder()``: the language model of a
    multimodal wrapper, never its vision or audio tower) as long as ``n_layers``; where the config counts
    its layers another way (an encoder-decoder's encoder, a derived count), the decoder's own longest list.

    Example:
        >>> parts = find_parts(hf_model, hf_model.config.num_hidden_layers)
        >>> len(parts.layers) == hf_model.config.num_hidden_layers
        True
    """
    base = module.base_model
    decoder = _decoder(module)
    candidates = [(n, c) for n, c in _layer_lists(decoder, 1) if len(c) == n_layers]
    if not candidates and decoder is not base:
        candidates = [(n, c) for n, c in _layer_lists(base, 1) if len(c) == n_layers]
        decoder = base if candidates else decoder
    if not candidates:  # the config counts layers another way: the decoder's own list of blocks
        candidates = sorted(_layer_lists(decoder, 0), key=lambda item: -len(item[1]))[:1]
    if not candidates:
        lists = _layer_lists(decoder, 1)
        if len(lists) > 1 and sum(len(c) for _, c in lists) == n_layers:
            names = ", ".join(f"{n} ({len(c)})" for n, c in lists)
            raise LayerscopeError(
                f"{type(module).__name__}: its {n_layers} layers are split across {len(lists)} lists ({names}), "
                "stacks that are not one sequence of blocks; such models are not supported"
            )
        raise LayerscopeError(
            f"cannot find the decoder layers of {type(module).__name__}: no nn.ModuleList of "
            f"{n_layers} layers (num_hidden_layers) under its decoder {type(decoder).__name__}"
        )
    layers_name, layers = min(candidates, key=lambda item: item[0].count("."))
    final_norm = next(
        (m for owner in (decoder, base) for m in (_get(owner, n) for n in FINAL_NORM_NAMES) if m is not None), None
    )
    prefix = "" if decoder is module else _path_of(module, decoder)
    layers_path = f"{prefix}.{layers_name}" if prefix else layers_name
    embed = module.get_input_embeddings()
    if not isinstance(getattr(embed, "weight", None), torch.Tensor):
        raise LayerscopeError(
            f"{type(module).__name__}: its input embedding is a {type(embed).__name__}, not one token embedding "
            "table (one table per codebook, as MusicGen's); such models are not supported"
        )
    return Parts(
        base=base,
        layers=layers,
        final_norm=final_norm,
        embed=embed,
        unembed=module.get_output_embeddings(),
        layers_path=layers_path,
    )


def _path_of(root: nn.Module, target: nn.Module) -> str:
    for name, child in root.named_modules():
        if child is target:
            return name
    return ""
