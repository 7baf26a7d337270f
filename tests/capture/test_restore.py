"""``restore_blocks``: each site of a reference model's run restored, at every position, into another model's run
of the same prompt, against a plain Hugging Face forward whose hook copies the reference's activation."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from patch_oracle import CLEAN, patched_logits, plain_logits, rounded_copy

from layerscope.capture.restore import restore_blocks
from layerscope.errors import LayerscopeError


@pytest.fixture(scope="module")
def pair_of_models(tiny_models):
    model = tiny_models["qwen3"]
    return rounded_copy(model, bits=3), model  # the studied copy, the reference


def test_every_site_equals_a_hooked_forward(pair_of_models):
    quantized, reference = pair_of_models
    ids = quantized.encode(CLEAN)
    out = restore_blocks(quantized, reference, ids, parts=("resid", "attn", "mlp"), batch_size=3)
    assert out.scores["resid"].shape == (quantized.n_layers + 1, len(quantized.tokenizer))
    assert out.scores["attn"].shape[0] == out.scores["mlp"].shape[0] == quantized.n_layers
    torch.testing.assert_close(out.reference, plain_logits(reference, ids), rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(out.model, plain_logits(quantized, ids), rtol=1e-4, atol=1e-4)
    worst = 0.0
    for part, scores in out.scores.items():
        for site, row in enumerate(scores):
            want = patched_logits(quantized, ids, ids, part, site, None, source_model=reference)
            worst = max(worst, float((row - want).abs().max() / want.abs().max()))
    assert worst < 1e-4
    # the last block's output restored leaves only the copy's final norm and head: near the reference
    assert float((out.scores["resid"][-1] - out.reference).abs().max()) < float((out.model - out.reference).abs().max())


def test_the_table_normalizes_by_the_gap_between_the_two_runs(pair_of_models):
    quantized, reference = pair_of_models
    ids = quantized.encode(CLEAN)
    out = restore_blocks(quantized, reference, ids, parts=("resid", "mlp"))
    kl = out.table("kl")
    assert list(kl.columns) == ["part", "layer", "depth", "value", "normalized"]
    assert list(kl["layer"][: quantized.n_layers + 1]) == ["embed", "0", "1", "2"]
    assert kl.attrs["reference_value"] == 0.0 and kl.attrs["model_value"] > 0
    ref_p = torch.log_softmax(out.reference.double(), -1)
    row = kl[(kl["part"] == "mlp") & (kl["layer"] == "1")].iloc[0]
    restored = torch.log_softmax(out.scores["mlp"][1].double(), -1)
    want = float((ref_p.exp() * (ref_p - restored)).sum())
    assert row["value"] == pytest.approx(want, rel=1e-9)
    assert row["normalized"] == pytest.approx(1 - want / kl.attrs["model_value"])
    (a,), (w,) = quantized.encode(" Mary", bos=False), quantized.encode(" John", bos=False)
    diff = out.table("logit-diff", answer=a, wrong=w)
    np.testing.assert_allclose(
        diff["value"][: quantized.n_layers + 1], (out.scores["resid"][:, a] - out.scores["resid"][:, w]).double()
    )
    with pytest.raises(LayerscopeError, match="needs the wrong token's id"):
        out.table("logit-diff", answer=a)


def test_the_same_model_twice_restores_nothing(tiny_models):
    model = tiny_models["llama"]
    out = restore_blocks(model, model, model.encode(CLEAN), parts=("resid", "attn"))
    for scores in out.scores.values():
        torch.testing.assert_close(scores, out.model.expand_as(scores), rtol=1e-5, atol=1e-5)
    assert all(math.isnan(v) for v in out.table("kl")["normalized"])


def test_bad_input_is_refused(pair_of_models):
    quantized, reference = pair_of_models
    with pytest.raises(LayerscopeError, match="unknown part 'heads'; valid: resid, attn, mlp"):
        restore_blocks(quantized, reference, [2, 5], parts=("heads",))
    with pytest.raises(LayerscopeError, match="no tokens"):
        restore_blocks(quantized, reference, [])
