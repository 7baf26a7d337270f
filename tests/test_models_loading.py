"""load_model on every kind of source, and one-line errors on bad ones."""

from __future__ import annotations

import pytest

import layerscope
from layerscope.errors import LayerscopeError


def test_loads_hf_directory(tiny_model_dirs):
    model = layerscope.load_model(str(tiny_model_dirs["llama"]))
    assert model.n_layers == 3 and model.d_model == 64
    assert model.fingerprint.startswith("dir:")
    assert model.fingerprint == layerscope.load_model(tiny_model_dirs["llama"]).fingerprint


@pytest.mark.parametrize(
    "source, message",
    [
        ("/no/such/model", "no such model file or directory"),
        ("./missing.gguf", "no such model file or directory"),
        ("not a valid id!", "neither an existing path nor a hub id"),
    ],
)
def test_bad_sources(source, message):
    with pytest.raises(LayerscopeError, match=message):
        layerscope.load_model(source)


def test_file_that_is_not_a_model(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("hello")
    with pytest.raises(LayerscopeError, match="is not a model"):
        layerscope.load_model(path)


def test_gguf_with_bad_magic(tmp_path):
    path = tmp_path / "broken.gguf"
    path.write_bytes(b"NOPE" + b"\0" * 64)
    with pytest.raises(LayerscopeError, match="is not a GGUF file"):
        layerscope.load_model(path)


def test_directory_without_config(tmp_path):
    with pytest.raises(LayerscopeError, match="has no config.json"):
        layerscope.load_model(tmp_path)


def test_hub_id_offline_is_one_line_error(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    with pytest.raises(LayerscopeError, match="cannot load model 'someone/no-such-model'"):
        layerscope.load_model("someone/no-such-model")


def test_bad_dtype():
    with pytest.raises(LayerscopeError, match="unknown dtype 'float8'"):
        layerscope.load_model(None, dtype="float8")
