"""Words in a context: the positions read are the word's own tokens, and the vectors are HF's."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import layerscope
from layerscope.capture.contexts import check_context, word_prompts
from layerscope.errors import LayerscopeError
from layerscope.tokensets import encode_sets

SETS = {"colors": ["red", "blue", "green"], "names": ["John", "Mary"]}


def test_bos_and_nobos_contexts(tiny):
    items = encode_sets(tiny.tokenizer, SETS, warn=False)
    with_bos = word_prompts(tiny, items, "bos")
    without = word_prompts(tiny, items, "nobos")
    for item, a, b in zip(items, with_bos, without):
        assert a.ids == (tiny.bos_token_id, *item.token_ids) and a.groups == (tuple(range(1, len(a.ids))),)
        assert b.ids == item.token_ids and b.groups == (tuple(range(len(b.ids))),)


@pytest.mark.parametrize("template", ["The word is {word}", "{word} is a word.", "When {word} went to the store"])
def test_template_positions_are_the_words_tokens(tiny_models, template):
    model = tiny_models["qwen3"]
    items = encode_sets(model.tokenizer, SETS, warn=False)
    for item, prompt in zip(items, word_prompts(model, items, template)):
        text = template.replace("{word}", item.label)
        assert list(prompt.ids) == model.encode(text, bos=True)  # the template is tokenized as one string
        (group,) = prompt.groups
        assert model.decode([prompt.ids[p] for p in group]).strip() == item.label
        assert list(group) == list(range(group[0], group[-1] + 1))


def test_template_vectors_equal_hf_hidden_states(tiny_models):
    model = tiny_models["gemma3"]
    template = "The word is {word}."
    result = layerscope.residuals(sets=SETS, model=model, context=template, layers="all")
    assert result.residuals.shape == (model.n_layers + 1, 5, model.d_model)
    for row in result.table.itertuples():
        ids = model.encode(template.replace("{word}", row.label), bos=True)
        positions = [int(p) for p in row.positions.split()]
        with torch.no_grad():
            states = model.module(input_ids=torch.tensor([ids]), output_hidden_states=True).hidden_states
        for layer in range(model.n_layers):
            want = states[layer][0, positions].mean(0).numpy()
            np.testing.assert_allclose(result.residuals[layer, row.item], want, atol=1e-5, rtol=0)


def test_prompts_api_reads_the_last_position(tiny_models):
    model = tiny_models["llama"]
    result = layerscope.residuals(["When John and Mary", "1+2="], model=model, layers="embed,-1")
    assert result.layers == ["embed", str(model.n_layers - 1)] and result.depths == [0, model.n_layers]
    texts = ["When John and Mary", "1+2="]
    assert list(result.table["tokens"]) == ["".join(model.token_strings([model.encode(t)[-1]])) for t in texts]
    with torch.no_grad():
        states = model.module(input_ids=torch.tensor([model.encode("1+2=")]), output_hidden_states=True).hidden_states
    np.testing.assert_allclose(result.residuals[0, 1], states[0][0, -1].numpy(), atol=1e-5, rtol=0)


@pytest.mark.parametrize("bad", ["The word is", "{word} and {word}", "", "BOS"])
def test_template_without_one_word_field_is_an_error(bad):
    with pytest.raises(LayerscopeError, match="template"):
        check_context(bad)
