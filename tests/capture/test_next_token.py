"""Next-token agreement at the read positions against full HF forwards: KL, top-1 and its probability."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from layerscope.capture.next_token import next_token_agreement, reference_next_tokens
from layerscope.capture.read_positions import capture_model
from layerscope.experiments.compare import CompareConfig
from layerscope.model_spec import ModelSpec

PROMPTS = ("5+2=", "3+4=", "9-2=", "2*3=", "The word is red")


def _config() -> CompareConfig:
    return CompareConfig(models=(ModelSpec("a"), ModelSpec("b")), prompts=PROMPTS)


def _hf_log_probs(model) -> torch.Tensor:
    rows = []
    for prompt in PROMPTS:
        with torch.no_grad():
            logits = model.module(input_ids=torch.tensor([model.encode(prompt)])).logits[0, -1]
        rows.append(torch.log_softmax(logits.double(), -1))
    return torch.stack(rows)


def test_kl_top1_and_its_probability_equal_hf_logits(tiny_models):
    ref, other = tiny_models["llama"], tiny_models["qwen3"]
    reference = reference_next_tokens(ref, capture_model(ref, _config(), "ref"))
    p, q = _hf_log_probs(ref), _hf_log_probs(other)
    assert reference.log_probs.shape == p.shape
    np.testing.assert_array_equal(reference.top1, p.argmax(-1).numpy())
    kl, top1, p_top1 = next_token_agreement(other, capture_model(other, _config(), "other"), reference)
    assert kl.shape == top1.shape == p_top1.shape == (len(PROMPTS),)
    np.testing.assert_allclose(kl, (p.exp() * (p - q)).sum(-1).numpy(), rtol=1e-4, atol=1e-7)
    np.testing.assert_array_equal(top1, q.argmax(-1).numpy())
    np.testing.assert_allclose(p_top1, q.exp().max(-1).values.numpy(), rtol=1e-4)


def test_a_model_against_itself_agrees_with_no_divergence(tiny_models):
    model = tiny_models["llama"]
    capture = capture_model(model, _config(), "m")
    reference = reference_next_tokens(model, capture)
    kl, top1, _ = next_token_agreement(model, capture, reference)
    assert kl == pytest.approx(np.zeros(len(PROMPTS)), abs=1e-7)
    np.testing.assert_array_equal(top1, reference.top1)
