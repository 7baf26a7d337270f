"""Named stages inside embedding models agree with independent computations on the HF model and ST's output."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from layerscope.capture.embedding_stages import capture_stages
from layerscope.errors import LayerscopeError
from layerscope.models.embedding import load_embedder

TEXTS = ["The cat sat on the mat.", "Stocks fell sharply today, said the report.", "hi", "7+8=15", "red and blue"]


def _per_text_hidden(embedder, text: str, prompt: str | None):
    """Hidden states of one text alone (no padding): the HF model's own ``output_hidden_states``."""
    st = embedder.module
    features = st.preprocess([text], prompt=prompt)
    with torch.no_grad():
        out = st[0].auto_model(
            input_ids=features["input_ids"], attention_mask=features["attention_mask"], output_hidden_states=True
        )
    return out.hidden_states, out.last_hidden_state


@pytest.mark.parametrize("prompt_name", [None, "query"])
def test_gemma_stages_match_independent_computation(tiny_embeddinggemma, prompt_name):
    captured = capture_stages(tiny_embeddinggemma, TEXTS, prompt_name=prompt_name, batch_size=2)
    assert captured.names == ["embed", "0", "1", "2", "pooling", "dense.0", "dense.1", "normalize"]
    st = tiny_embeddinggemma.module
    prompt = tiny_embeddinggemma.prompts.get(prompt_name) if prompt_name else None
    for row, text in enumerate(TEXTS):
        hidden, last = _per_text_hidden(tiny_embeddinggemma, text, prompt)
        np.testing.assert_allclose(captured.vectors["embed"][row], hidden[0][0].mean(0).numpy(), atol=1e-5)
        for layer in range(2):  # the last entry of hidden_states is after the final norm
            np.testing.assert_allclose(
                captured.vectors[str(layer)][row], hidden[layer + 1][0].mean(0).numpy(), atol=1e-5
            )
        np.testing.assert_allclose(captured.vectors["pooling"][row], last[0].mean(0).numpy(), atol=1e-5)
    w0, w1 = st[2].linear.weight.detach().numpy(), st[3].linear.weight.detach().numpy()
    np.testing.assert_allclose(captured.vectors["dense.0"], captured.vectors["pooling"] @ w0.T, atol=1e-4)
    np.testing.assert_allclose(captured.vectors["dense.1"], captured.vectors["dense.0"] @ w1.T, atol=1e-4)
    d1 = captured.vectors["dense.1"]
    np.testing.assert_allclose(captured.vectors["normalize"], d1 / np.linalg.norm(d1, axis=1, keepdims=True), atol=1e-6)
    np.testing.assert_allclose(captured.vectors["normalize"], st.encode(TEXTS, prompt_name=prompt_name), atol=1e-5)
    assert captured.vectors["dense.0"].shape == (len(TEXTS), 256)


def test_minilm_stages():
    embedder = load_embedder()
    captured = capture_stages(embedder, TEXTS, batch_size=3)
    assert captured.names == ["embed", *map(str, range(6)), "pooling", "normalize"]
    for row, text in enumerate(TEXTS):
        hidden, _ = _per_text_hidden(embedder, text, None)
        for depth in range(7):  # embed, then layers 0..5 (BERT's last hidden state is the last layer's output)
            name = "embed" if depth == 0 else str(depth - 1)
            np.testing.assert_allclose(captured.vectors[name][row], hidden[depth][0].mean(0).numpy(), atol=1e-5)
    np.testing.assert_allclose(captured.vectors["5"], captured.vectors["pooling"], atol=1e-6)
    np.testing.assert_allclose(captured.vectors["normalize"], embedder.module.encode(TEXTS), atol=1e-5)


def test_unknown_prompt_name(tiny_embeddinggemma):
    with pytest.raises(LayerscopeError, match="unknown prompt name"):
        capture_stages(tiny_embeddinggemma, TEXTS, prompt_name="nope")
