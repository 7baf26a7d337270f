"""The default model's text weights inside transformers' multimodal Gemma 3 class give the text model's numbers.

Real Gemma 3 4B-27B checkpoints are ``Gemma3ForConditionalGeneration``: a vision tower beside the language
model, whose final norm, layers and head sit one level deeper. Here the default model's own text weights are
copied into that class (its text config, a tiny vision config), and every layer, the logit lens, ablation and
greedy decoding are compared with the text model's.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from layerscope import Model
from layerscope.capture.ablation import LayerAblation, encode_task
from layerscope.capture.engine import capture_residuals
from layerscope.capture.logit_lens import lens_logits
from layerscope.capture.prompts import prompts_at

PROMPTS = ["The capital of France is", "5+2=", "When John and Mary went to the store, John gave the bag to"]


@pytest.fixture(scope="module")
def wrapped(default_model) -> Model:
    """``Gemma3ForConditionalGeneration`` holding the default model's text weights (and a tiny vision tower)."""
    import transformers as tf

    text = default_model.module
    vision = tf.SiglipVisionConfig(
        hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2, image_size=32, patch_size=8
    )
    config = tf.Gemma3Config(text_config=text.config.to_dict(), vision_config=vision.to_dict(), mm_tokens_per_image=16)
    torch.manual_seed(0)
    module = tf.Gemma3ForConditionalGeneration(config).to(text.dtype).eval()
    module.model.language_model.load_state_dict(text.model.state_dict(), strict=True)  # every text weight, exactly
    module.lm_head.weight = module.model.language_model.embed_tokens.weight  # tied, as in the text model
    return Model(module=module, tokenizer=default_model.tokenizer, source="wrapped", fingerprint="", name="wrapped")


@pytest.mark.default_model
def test_the_wrapper_is_found_as_the_text_model(default_model, wrapped):
    assert type(wrapped.module).__name__ == "Gemma3ForConditionalGeneration"
    assert wrapped.n_layers == default_model.n_layers
    assert wrapped.parts.layers_path == "model.language_model.layers"
    assert wrapped.final_norm is wrapped.module.model.language_model.norm
    assert wrapped.head.softcap == default_model.head.softcap and wrapped.head.scale == default_model.head.scale


@pytest.mark.default_model
def test_capture_lens_ablation_and_decoding_equal_the_text_model(default_model, wrapped):
    ids = [default_model.encode(p) for p in PROMPTS]
    layers = [*range(default_model.n_layers + 1), "norm"]
    ours = capture_residuals(wrapped, prompts_at(ids, "last"), layers)
    theirs = capture_residuals(default_model, prompts_at(ids, "last"), layers)
    np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-5)
    lens = lens_logits(wrapped, ours[1:-1, 0])
    torch.testing.assert_close(lens, lens_logits(default_model, theirs[1:-1, 0]), rtol=1e-4, atol=1e-4)
    with torch.no_grad():  # the last block's lens is the wrapper's own logits
        logits = wrapped.module(input_ids=torch.tensor([ids[0]])).logits[0, -1].float()
    torch.testing.assert_close(lens[-1], logits, rtol=1e-4, atol=1e-4)
    encoded = encode_task(default_model, PROMPTS, [" Paris", "7", " Mary"])
    for removed in [(0,), (5,)]:
        a = LayerAblation(wrapped, encoded, needed=[removed]).run(removed)
        b = LayerAblation(default_model, encoded, needed=[removed]).run(removed)
        assert a.tokens == b.tokens
        np.testing.assert_allclose(a.p_first, b.p_first, rtol=1e-4, atol=1e-6)
    assert wrapped.complete(PROMPTS[0], 6) == default_model.complete(PROMPTS[0], 6)
