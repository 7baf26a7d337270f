"""The plain way to remove layers, as an oracle: copy the model, delete the layers, rerun every prompt alone."""

from __future__ import annotations

import contextlib
import copy

import torch
from torch import nn

# Repeated prompts (with the same or another answer) run once and are scored per item.
MIXED_PROMPTS = [
    "5+2=",
    "12*3=",
    "The word is",
    "When John and Mary went to the store, John gave the bag to",
    "9-9=",
    "Monday",
    "5+2=",
    "5+2=",
]
MIXED_ANSWERS = ["7", "36", " red", " Mary", "0", " Tuesday", "7", "8"]


def model_without(module: nn.Module, layers_path: str, removed) -> nn.Module:
    """A copy of ``module`` (sharing its weights) whose decoder layer list lacks ``removed`` (config updated to match)."""
    # Share the weights (no gigabyte copies), copy everything else.
    memo = {id(t): t for t in [*module.parameters(), *module.buffers()]}
    clone = copy.deepcopy(module, memo)
    parent_path, _, name = layers_path.rpartition(".")
    parent = clone.get_submodule(parent_path) if parent_path else clone
    old = getattr(parent, name)
    keep = [i for i in range(len(old)) if i not in set(removed)]
    setattr(parent, name, nn.ModuleList([old[i] for i in keep]))
    for config in {id(c): c for c in (clone.config, clone.config.get_text_config(), parent.config)}.values():
        config.num_hidden_layers = len(keep)
        if isinstance(getattr(config, "layer_types", None), list):
            config.layer_types = [config.layer_types[i] for i in keep]
    return clone


@torch.inference_mode()
def naive_predictions(model, removed, sequences: list[list[int]], n_scored: list[int]) -> list[list[int]]:
    """Per sequence, the argmax ids at its last ``n_scored`` positions, from an unbatched forward of all layers."""
    module = model_without(model.module, model.parts.layers_path, removed) if removed else model.module
    out = []
    for ids, m in zip(sequences, n_scored):
        logits = module(input_ids=torch.tensor([ids]), use_cache=False, logits_to_keep=m).logits  # (1, m, vocab)
        out.append(logits[0, -m:].argmax(-1).tolist())
    return out


@contextlib.contextmanager
def part_zeroed(model, part: str, layers):
    """Plain monkeypatching: ``layers[k].self_attn`` (``part`` ``attn`` or ``self_attn``) or ``.mlp`` returns zeros
    of its input's shape (attention as ``(output, weights)``, gpt-oss's MoE as ``(output, router scores)``)."""
    name = {"attn": "self_attn"}.get(part, part)
    as_tuple = name == "self_attn" or model.module.config.model_type == "gpt_oss"
    modules = [getattr(model.module.model.layers[k], name) for k in layers]  # every tiny model is model.model.layers

    def zeros(*args, **kwargs):
        out = torch.zeros_like(args[0] if args else kwargs["hidden_states"])
        return (out, None) if as_tuple else out

    try:
        for module in modules:
            module.forward = zeros
        yield
    finally:
        for module in modules:
            del module.forward
