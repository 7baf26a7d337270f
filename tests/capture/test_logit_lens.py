"""The logit lens against the model's own logits; ranks are 1-based (1 = the top token)."""

from __future__ import annotations

import numpy as np
import torch

from layerscope.capture.logit_lens import lens_logits, lens_readout


def _hf(model, prompt):
    ids = torch.tensor([model.encode(prompt)])
    with torch.no_grad():
        return model.module(input_ids=ids, output_hidden_states=True)


def test_readout_of_the_final_norm_is_the_models_next_token(tiny):
    out = _hf(tiny, "5+2=")
    logits = out.logits[0, -1]
    top = int(logits.argmax())
    final = out.hidden_states[-1][0, -1].numpy()[None]  # after the final norm
    readout = lens_readout(tiny, final, k=3, target=top, normed_from=0)
    assert int(readout.top_ids[0, 0]) == top
    assert readout.target_rank.tolist() == [1]  # the top token has rank 1
    np.testing.assert_allclose(readout.top_probs[0, 0], float(torch.softmax(logits, -1)[top]), rtol=1e-4)


def test_ranks_count_the_tokens_above_plus_one(tiny_models):
    model = tiny_models["gemma2"]  # final logit soft-capping
    hidden = _hf(model, "9-2=").hidden_states
    rows = np.stack([h[0, -1].numpy() for h in hidden[:-1]])  # embed and blocks 0..n-2, before the final norm
    target = model.encode("7", bos=False)[0]
    readout = lens_readout(model, rows, k=5, target=target, chunk=2)
    logits = lens_logits(model, rows)
    expected = 1 + (logits > logits[:, target : target + 1]).sum(-1).numpy()
    np.testing.assert_array_equal(readout.target_rank, expected)
    assert (readout.target_rank >= 1).all()
    np.testing.assert_allclose(readout.target_prob, torch.softmax(logits, -1)[:, target].numpy(), rtol=1e-5)
