"""load_model on every kind of source, and one-line errors on bad ones."""

from __future__ import annotations

import json

import pytest
import torch

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


def test_pickled_weights_with_code_are_refused_and_never_run(tiny_model_dirs, tmp_path):
    import os
    import pickle
    import shutil

    directory = tmp_path / "evil"
    shutil.copytree(tiny_model_dirs["llama"], directory)
    (directory / "model.safetensors").unlink()
    marker = tmp_path / "executed"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    with open(directory / "pytorch_model.bin", "wb") as handle:
        pickle.dump({"model.embed_tokens.weight": Payload()}, handle)
    with pytest.raises(LayerscopeError, match="weights_only=True"):
        layerscope.load_model(directory)
    assert not marker.exists()


def test_plain_pickled_tensors_still_load(tiny_model_dirs, tmp_path):
    import shutil

    import torch
    from safetensors.torch import load_file

    directory = tmp_path / "bin"
    shutil.copytree(tiny_model_dirs["llama"], directory)
    state = load_file(directory / "model.safetensors")
    (directory / "model.safetensors").unlink()
    torch.save(state, directory / "pytorch_model.bin")
    model = layerscope.load_model(directory)
    torch.testing.assert_close(model.embedding_matrix, state["model.embed_tokens.weight"])


def test_remote_code_needs_the_flag(tiny_model_dirs, tmp_path, capsys):
    import json
    import shutil

    from layerscope.cli import main

    directory = tmp_path / "custom"
    shutil.copytree(tiny_model_dirs["llama"], directory)
    config = json.loads((directory / "config.json").read_text())
    config["auto_map"] = {"AutoModelForCausalLM": "modeling_custom.CustomModel"}
    (directory / "config.json").write_text(json.dumps(config))
    with pytest.raises(LayerscopeError, match="ships its own Python code.*--trust-remote-code"):
        layerscope.load_model(directory)
    assert main(["--quiet", "tokens", "--model", str(directory)]) == 2
    assert "--trust-remote-code" in capsys.readouterr().err


@pytest.fixture
def stand_in_gguf(tmp_path, monkeypatch):
    """A file that passes for a GGUF (header check off) in a fresh cache, and the conversions it gets: each
    ``(out directory, dtype)`` the cache asks for, writing only a config."""
    from layerscope.models import gguf_cache, guard

    monkeypatch.setenv("LAYERSCOPE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(guard, "check_gguf_header", lambda path, dtype="float32": None)
    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"GGUF" + b"\0" * 60)
    converted = []
    monkeypatch.setattr(
        gguf_cache,
        "_convert",
        lambda path, out, dtype="float32": converted.append((out, dtype)) or (out / "config.json").write_text("{}"),
    )
    return gguf, converted


def test_incomplete_gguf_cache_entry_is_rebuilt(stand_in_gguf, tmp_path):
    from layerscope.models import gguf_cache

    gguf, converted = stand_in_gguf
    sha = gguf_cache.file_sha256(gguf)
    stale = tmp_path / "cache" / "gguf" / sha
    stale.mkdir(parents=True)
    (stale / "leftover.bin").write_text("half")  # an entry without its completion marker
    entry, _ = gguf_cache.cached_gguf_dir(gguf)
    assert entry == stale and len(converted) == 1
    assert (entry / "layerscope.json").is_file() and not (entry / "leftover.bin").exists()
    gguf_cache.cached_gguf_dir(gguf)
    assert len(converted) == 1  # complete now: not converted again


def test_gguf_cache_is_keyed_by_dtype_and_writes_no_float32_copy_unless_asked(stand_in_gguf, tmp_path):
    from layerscope.models import gguf_cache

    gguf, conversions = stand_in_gguf
    sha = gguf_cache.file_sha256(gguf)
    entry, _ = gguf_cache.cached_gguf_dir(gguf, "bfloat16")
    converted = [dtype for _, dtype in conversions]
    assert entry.name == f"{sha}-bfloat16" and converted == ["bfloat16"]
    assert sorted(p.name for p in (tmp_path / "cache" / "gguf").iterdir()) == [f"{sha}-bfloat16"]  # no float32 copy
    assert json.loads((entry / "layerscope.json").read_text())["dtype"] == "bfloat16"
    assert gguf_cache.cached_gguf_dir(gguf, torch.bfloat16)[0] == entry and len(conversions) == 1
    assert gguf_cache.cached_gguf_dir(gguf, "auto")[0].name == sha
    assert [dtype for _, dtype in conversions] == ["bfloat16", "float32"]
    with pytest.raises(LayerscopeError, match="not 'int8'"):
        gguf_cache.cached_gguf_dir(gguf, "int8")
