"""The deepest block's queries, attention output and MLP run at the read rows only, with the numbers of the
whole forward (HF's, atol 1e-5); a module that mixes positions or is shared keeps running whole."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hf_oracles import hf_hidden_states

from layerscope.capture import FINAL_NORM, capture_residuals, parse_layers, prompts_at
from layerscope.capture.ablation import submodule
from layerscope.capture.deepest_block import at_rows, rows_only_parts
from layerscope.models.block_check import check_blocks

TEXTS = ["The word is red.", "John", "When John and Mary went to the store", "1+2=3", "Paris London Rome"]
_VERDICT = "_layerscope_rows_only_parts"


def _count_rows(monkeypatch) -> dict[int, int]:
    """``{id(linear): positions}``: how many positions each ``nn.Linear`` computes (inputs ``(..., d)``)."""
    seen: dict[int, int] = {}
    linear = torch.nn.Linear.forward

    def forward(self, hidden):
        seen[id(self)] = seen.get(id(self), 0) + hidden[..., 0].numel()
        return linear(self, hidden)

    monkeypatch.setattr(torch.nn.Linear, "forward", forward)
    return seen


def _names(model, modules) -> list[str]:
    names = {id(m): n for n, m in model.layers[-1].named_modules()}
    return [names[id(m)] for m in modules]


def test_the_last_blocks_rows_only_parts_see_only_the_read_rows_and_the_numbers_are_hfs(tiny, monkeypatch):
    ids = [tiny.encode(t) for t in TEXTS]
    layers = parse_layers("all", tiny.n_layers) + [FINAL_NORM]
    parts = rows_only_parts(tiny, tiny.n_layers - 1)  # probed before the rows are counted
    check_blocks(tiny)  # its one 3-token forward runs before the rows are counted
    seen = _count_rows(monkeypatch)
    got = capture_residuals(tiny, prompts_at(ids, "last"), layers, batch_size=5)
    for part in parts:
        inner = next(m for m in part.modules() if isinstance(m, torch.nn.Linear))  # the part, or its first
        assert seen[id(inner)] == len(ids)  # one row per prompt, not batch x width
        assert "forward" not in part.__dict__  # restored
    for item, prompt in enumerate(ids):
        hf = hf_hidden_states(tiny, prompt)
        for layer in range(tiny.n_layers):
            np.testing.assert_allclose(got[layer, item], hf[layer][-1], atol=1e-5, rtol=0)
        np.testing.assert_allclose(got[tiny.n_layers, item], hf[-1][-1], atol=1e-5, rtol=0)
        np.testing.assert_allclose(got[-1, item], hf[tiny.n_layers][-1], atol=1e-5, rtol=0)


def test_queries_attention_output_and_dense_mlps_pass_the_probe_and_a_mixture_of_experts_keeps_its_mlp(
    tiny_models,
):
    every = ["self_attn.q_proj", "self_attn.o_proj", "mlp"]
    for arch in ("llama", "gemma2", "gemma3", "qwen3", "olmo3"):
        model = tiny_models[arch]
        assert _names(model, rows_only_parts(model, model.n_layers - 1)) == every, arch
    gpt_oss = tiny_models["gpt_oss"]  # its MLP returns (hidden, router scores), not one tensor
    assert _names(gpt_oss, rows_only_parts(gpt_oss, gpt_oss.n_layers - 1)) == every[:2]


class _MixesPositions(torch.nn.Module):
    """A projection whose output at a position depends on the others (a running sum): never run on rows alone."""

    def __init__(self, linear: torch.nn.Linear):
        super().__init__()
        self.linear = linear

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.linear(hidden).cumsum(dim=1)


@pytest.mark.parametrize("name", ["q_proj", "o_proj"])
def test_an_attention_projection_that_mixes_positions_fails_the_probe_and_the_numbers_stay_exact(tiny_models, name):
    model = tiny_models["qwen3"]
    index = model.n_layers - 1
    attention = submodule(model.layers[index], "attn")
    original = getattr(attention, name)
    setattr(attention, name, _MixesPositions(original))
    model.__dict__.pop(_VERDICT, None)
    try:
        kept = _names(model, rows_only_parts(model, index))
        assert f"self_attn.{name}" not in kept and "mlp" in kept
        ids = [model.encode(t) for t in TEXTS]
        got = capture_residuals(model, prompts_at(ids, "last"), [model.n_layers], batch_size=5)
        for item, prompt in enumerate(ids):
            np.testing.assert_allclose(got[0, item], hf_hidden_states(model, prompt)[-1][-1], atol=1e-5, rtol=0)
    finally:
        setattr(attention, name, original)
        model.__dict__.pop(_VERDICT, None)


def test_a_module_another_block_shares_keeps_running_whole(tiny_models):
    model = tiny_models["llama"]
    index = model.n_layers - 1
    first, last = model.layers[0].mlp, model.layers[index].mlp
    model.layers[index].mlp = first
    model.__dict__.pop(_VERDICT, None)
    try:
        assert _names(model, rows_only_parts(model, index)) == ["self_attn.q_proj", "self_attn.o_proj"]
    finally:
        model.layers[index].mlp = last
        model.__dict__.pop(_VERDICT, None)


def test_at_rows_scatters_into_zeros_runs_other_shapes_whole_and_restores_forward():
    mlp = torch.nn.Sequential(torch.nn.Linear(4, 6), torch.nn.GELU(), torch.nn.Linear(6, 4))
    hidden = torch.randn(2, 3, 4)
    batch_index, seq_index = torch.tensor([0, 1, 1]), torch.tensor([2, 0, 2])
    flat = batch_index * 3 + seq_index
    with at_rows([mlp], lambda: (flat, (2, 3))):
        out = mlp(hidden)
        other = torch.randn(2, 5, 4)
        whole_other = mlp(other)
    whole = mlp(hidden)
    assert "forward" not in mlp.__dict__
    torch.testing.assert_close(whole_other, mlp(other))
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
