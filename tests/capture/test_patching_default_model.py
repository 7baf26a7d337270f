"""Patched cells on the real default model (Gemma 3 270M) against a plain Hugging Face forward whose hook (written in
tests/patch_oracle.py, not through layerscope's engine) overwrites that one activation."""

from __future__ import annotations

import pytest
import torch
from patch_oracle import patched_logits, plain_logits

from layerscope.capture.patching import Cell, PairIds, PatchEngine

CLEAN = "When Mary and John went to the store, John gave a drink to"
CORRUPT = "When Mary and John went to the store, Mary gave a drink to"


@pytest.mark.default_model
def test_cells_equal_a_hooked_forward_on_the_default_model(default_model):
    model = default_model
    (answer,), (wrong,) = model.encode(" Mary", bos=False), model.encode(" John", bos=False)
    pair = PairIds(tuple(model.encode(CLEAN)), tuple(model.encode(CORRUPT)), answer, wrong)
    f, last, n = pair.changed[0], pair.length - 1, model.n_layers
    engine = PatchEngine(model, pair, full_vocab=True, batch_size=8)
    assert engine.first == f > 0
    assert float((engine.clean.scores - plain_logits(model, list(pair.clean))).abs().max()) < 1e-3
    cells = [
        Cell("resid", 10, f),  # block 9's output at the changed token (the README's example)
        Cell("resid", n, last),
        Cell("attn", 11, last),
        Cell("mlp", 3, f),
        Cell("heads", 11, None, 2),
    ]
    got = engine.run_cells(cells, "denoise")
    head_dim = engine._heads[1]
    worst = 0.0
    for row, cell in zip(got, cells):
        want = patched_logits(
            model, list(pair.corrupt), list(pair.clean), cell.part, cell.layer, cell.position, cell.head, head_dim
        )
        error = float((row - want).abs().max() / want.abs().max())
        worst = max(worst, error)
        assert error < 1e-4, (cell, error)
    # the narrow head (answer and wrong columns only) of the logit-diff runs gives the same two logits
    narrow = PatchEngine(model, pair, parts=("resid",)).run_cells(cells[:2])
    torch.testing.assert_close(narrow, got[:2, [answer, wrong]], rtol=1e-4, atol=1e-3)
    print(f"worst relative error {worst:.2e}")
