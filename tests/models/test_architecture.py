"""Generic part discovery against Hugging Face's own outputs, on every tiny architecture."""

from __future__ import annotations

import torch
from hf_oracles import hf_greedy


def _hf_forward(model, text="When John and Mary went to the store"):
    ids = torch.tensor([model.encode(text)])
    captured = {}
    handle = model.layers[-1].register_forward_hook(
        lambda mod, args, out: captured.setdefault("last", out[0] if isinstance(out, tuple) else out)
    )
    try:
        with torch.no_grad():
            out = model.module(input_ids=ids, output_hidden_states=True)
    finally:
        handle.remove()
    return out, captured["last"]


def test_layer_count_matches_hidden_states(tiny):
    out, _ = _hf_forward(tiny)
    assert len(out.hidden_states) == tiny.n_layers + 1
    assert len(tiny.layers) == tiny.n_layers == tiny.module.config.num_hidden_layers
    assert tiny.d_model == out.hidden_states[0].shape[-1]


def test_layers_are_the_models_decoder_layers(tiny):
    assert tiny.layers is tiny.module.model.layers
    assert tiny.parts.layers_path == "model.layers"


def test_embedding_and_unembedding_are_hf_modules(tiny):
    assert tiny.embedding_matrix is tiny.module.get_input_embeddings().weight
    assert tiny.unembedding_matrix is tiny.module.get_output_embeddings().weight


def test_final_norm_and_unembedding_reproduce_logits(tiny):
    """unembed(final_norm(last layer output)) equals HF's logits (with soft-capping where the config has it)."""
    out, last = _hf_forward(tiny)
    with torch.no_grad():
        logits = tiny.final_norm(last) @ tiny.unembedding_matrix.T
        cap = getattr(tiny.config, "final_logit_softcapping", None)
        if cap:
            logits = torch.tanh(logits / cap) * cap
    torch.testing.assert_close(logits, out.logits, atol=1e-5, rtol=1e-5)


def test_greedy_completion_equals_generate(tiny):
    prompt = "The word is"
    assert tiny.complete(prompt, max_new_tokens=6) == hf_greedy(tiny, tiny.encode(prompt), 6)


def test_encode_bos_really_on_or_off(tiny):
    with_bos = tiny.encode(" John", bos=True)
    without = tiny.encode(" John", bos=False)
    assert with_bos[0] == tiny.bos_token_id
    assert tiny.bos_token_id not in without
    assert with_bos[1:] == without
