"""The plain way to remove layers, as an oracle: copy the model, delete the layers, rerun every prompt alone."""

from __future__ import annotations

import copy

import torch
from torch import nn


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
