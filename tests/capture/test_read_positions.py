"""The read-position capture: every layer at the last token of each input, as HF computes it; when two
captures can be measured against each other position by position."""

from __future__ import annotations

import dataclasses

import numpy as np
from hf_oracles import hf_hidden_states

from layerscope.capture.read_positions import capture_model, capture_prompts, comparable
from layerscope.experiments.compare import CompareConfig
from layerscope.model_spec import ModelSpec

PROMPTS = ("5+2=", "3+4=", "The word is red", "John gave the bag to")
WORDS = "red,green,January,Paris,doctor"
SPECS = (ModelSpec("a"), ModelSpec("b"))


def test_prompts_are_read_at_their_last_token_at_every_layer(tiny_models):
    model = tiny_models["llama"]
    capture = capture_model(model, CompareConfig(models=SPECS, prompts=PROMPTS, batch_size=3), "m")
    n = model.n_layers
    assert capture.residuals.shape == (n + 2, len(PROMPTS), model.d_model)
    assert capture.layers == ["embed", *map(str, range(n)), "norm"] and capture.depths == list(range(n + 2))
    assert capture.relative_depths == [d / n for d in range(n + 2)]
    for item, prompt in enumerate(PROMPTS):
        ids = model.encode(prompt)
        assert capture.ids[item] == tuple(ids)
        hf = hf_hidden_states(model, ids)  # 0..n-1, after the final norm, the last block before it
        for layer in range(n):
            np.testing.assert_allclose(capture.residuals[layer, item], hf[layer][-1], atol=1e-5, rtol=0)
        np.testing.assert_allclose(capture.residuals[n, item], hf[-1][-1], atol=1e-5, rtol=0)
        np.testing.assert_allclose(capture.residuals[n + 1, item], hf[n][-1], atol=1e-5, rtol=0)
    assert capture.read == model.token_strings([model.encode(p)[-1] for p in PROMPTS])


def test_words_are_read_at_their_last_token_in_the_template(tiny_models):
    model = tiny_models["llama"]
    config = CompareConfig(models=SPECS, tokens=tuple(WORDS.split(",")), context="The word is {word}")
    prompts = capture_prompts(model, config)
    capture = capture_model(model, config, "m")
    words = WORDS.split(",")
    assert len(prompts) == len(words) == capture.residuals.shape[1]
    last = [model.tokenizer(f"The word is {w}")["input_ids"][-1] for w in words]
    assert capture.read == model.token_strings(last)
    assert [p.ids[p.groups[0][-1]] for p in prompts] == last


def test_comparable_names_what_differs(tiny_models):
    llama, qwen = tiny_models["llama"], tiny_models["qwen3"]
    config = CompareConfig(models=SPECS, prompts=PROMPTS)
    a, b = capture_model(llama, config, "a"), capture_model(qwen, config, "b")
    assert comparable(a, b) is None  # one tokenizer, one shape
    assert comparable(a, dataclasses.replace(b, n_blocks=b.n_blocks + 1)).endswith(f"the reference {a.n_blocks}")
    assert comparable(a, dataclasses.replace(b, d_model=b.d_model * 2)).startswith("width")
    assert comparable(a, dataclasses.replace(b, layers=b.layers[:-1])) == "other layers than the reference"
    assert comparable(a, dataclasses.replace(b, ids=b.ids[::-1])) == "another tokenization of the inputs"
