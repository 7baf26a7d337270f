"""The capture engine on the real default model (Gemma 3 270M) against HF ``output_hidden_states``."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from layerscope.capture import FINAL_NORM, capture_residuals, parse_layers, prompts_at

TEXTS = ["The capital of France is", "red", "January February March"]


@pytest.mark.default_model
def test_every_layer_equals_hf_on_the_default_model(default_model):
    model = default_model
    ids = [model.encode(t) for t in TEXTS]
    layers = parse_layers("all", model.n_layers) + [FINAL_NORM]
    alone = capture_residuals(model, prompts_at(ids, "all"), layers, batch_size=1)
    padded = capture_residuals(model, prompts_at(ids, "all"), layers, batch_size=3)
    start = 0
    for prompt in ids:
        with torch.no_grad():
            hf = model.module(input_ids=torch.tensor([prompt]), output_hidden_states=True).hidden_states
        assert len(hf) == model.n_layers + 1
        span = slice(start, start + len(prompt))
        for layer in range(model.n_layers):
            want = hf[layer][0].numpy()
            np.testing.assert_allclose(alone[layer, span], want, atol=1e-5, rtol=0)
            # In a padded batch the sums run in another order: float32 rounding at the layer's scale
            # (Gemma's residual stream reaches 1e5), nothing more.
            scale = max(1.0, float(np.abs(want).max()))
            np.testing.assert_allclose(padded[layer, span], want, atol=1e-5 * scale, rtol=0)
        np.testing.assert_allclose(alone[-1, span], hf[-1][0].numpy(), atol=1e-5, rtol=0)
        with torch.no_grad():
            normed = model.final_norm(torch.from_numpy(np.array(alone[model.n_layers, span])))
        np.testing.assert_allclose(normed.numpy(), hf[-1][0].numpy(), atol=1e-5, rtol=0)
        start += len(prompt)
