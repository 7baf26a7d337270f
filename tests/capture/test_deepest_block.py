"""The deepest block's MLP runs at the read rows only, with the numbers of the whole forward (HF's, atol 1e-5)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hf_oracles import hf_hidden_states

from layerscope.capture import FINAL_NORM, capture_residuals, parse_layers, prompts_at
from layerscope.capture.ablation import submodule
from layerscope.capture.deepest_block import mlp_at_rows, rows_only_mlp
from layerscope.models.block_check import check_blocks

TEXTS = ["The word is red.", "John", "When John and Mary went to the store", "1+2=3", "Paris London Rome"]


def _rows_into(module: torch.nn.Module, seen: list[int]):
    """Record how many positions each call of ``module`` gets (its input is ``(batch, pos, d)``)."""
    return module.register_forward_pre_hook(lambda m, args: seen.append(args[0].shape[0] * args[0].shape[1]))


def test_the_last_blocks_mlp_sees_only_the_read_rows_and_the_numbers_are_hfs(tiny):
    ids = [tiny.encode(t) for t in TEXTS]
    layers = parse_layers("all", tiny.n_layers) + [FINAL_NORM]
    check_blocks(tiny)  # its one 3-token forward runs before the hook below counts
    mlp = rows_only_mlp(tiny, tiny.n_layers - 1)
    inner = [m for m in mlp.modules() if isinstance(m, torch.nn.Linear)][0] if mlp is not None else None
    seen: list[int] = []
    handle = _rows_into(inner, seen) if inner is not None else None
    try:
        got = capture_residuals(tiny, prompts_at(ids, "last"), layers, batch_size=5)
    finally:
        if handle is not None:
            handle.remove()
    if mlp is not None:
        assert sum(seen) == len(ids)  # one row per prompt (in each batch), not batch x width
        assert "forward" not in mlp.__dict__  # restored
    for item, prompt in enumerate(ids):
        hf = hf_hidden_states(tiny, prompt)
        for layer in range(tiny.n_layers):
            np.testing.assert_allclose(got[layer, item], hf[layer][-1], atol=1e-5, rtol=0)
        np.testing.assert_allclose(got[tiny.n_layers, item], hf[-1][-1], atol=1e-5, rtol=0)
        np.testing.assert_allclose(got[-1, item], hf[tiny.n_layers][-1], atol=1e-5, rtol=0)


def test_dense_mlps_pass_the_probe_and_a_mixture_of_experts_keeps_its_whole_mlp(tiny_models):
    assert rows_only_mlp(tiny_models["llama"], 0) is not None
    assert rows_only_mlp(tiny_models["gemma3"], 1) is not None
    assert rows_only_mlp(tiny_models["gpt_oss"], 0) is None  # returns (hidden, router scores), not one tensor


class _MixesPositions(torch.nn.Module):
    """An MLP whose output at a position depends on the others (a running sum): never run on rows alone."""

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return hidden.cumsum(dim=1)


def test_an_mlp_that_mixes_positions_fails_the_probe(tiny_models):
    model = tiny_models["qwen3"]
    layer = model.layers[0]
    original = submodule(layer, "mlp")
    layer.mlp = _MixesPositions()
    try:
        del model.__dict__["_layerscope_mlp_per_position"]
    except KeyError:
        pass
    try:
        assert rows_only_mlp(model, 0) is None
    finally:
        layer.mlp = original
        model.__dict__.pop("_layerscope_mlp_per_position", None)


def test_mlp_at_rows_scatters_into_zeros_and_restores_forward():
    mlp = torch.nn.Sequential(torch.nn.Linear(4, 6), torch.nn.GELU(), torch.nn.Linear(6, 4))
    hidden = torch.randn(2, 3, 4)
    batch_index, seq_index = torch.tensor([0, 1, 1]), torch.tensor([2, 0, 2])
    with mlp_at_rows(mlp, lambda: (batch_index, seq_index)):
        out = mlp(hidden)
    whole = mlp(hidden)
    assert "forward" not in mlp.__dict__
    mask = torch.zeros(2, 3, dtype=torch.bool)
    mask[batch_index, seq_index] = True
    torch.testing.assert_close(out[mask], whole[mask])
    assert torch.count_nonzero(out[~mask]) == 0


@pytest.mark.parametrize("deepest", ["embed", "0"])
def test_nothing_changes_when_the_deepest_layer_is_shallow(tiny_models, deepest):
    model = tiny_models["llama"]
    ids = [model.encode(t) for t in TEXTS]
    layers = parse_layers(deepest, model.n_layers)
    got = capture_residuals(model, prompts_at(ids, "last"), layers)
    for item, prompt in enumerate(ids):
        np.testing.assert_allclose(got[0, item], hf_hidden_states(model, prompt)[layers[0]][-1], atol=1e-5, rtol=0)
