"""Float views of checkpoints, one tensor at a time: the names, shapes and values the libraries read."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch
from safetensors.numpy import load_file

import layerscope
from layerscope.convert.float_weights import open_float_weights
from layerscope.convert.weight_error import tensor_error
from layerscope.errors import LayerscopeError


def test_a_safetensors_directory_reads_as_stored(tiny_model_dirs):
    directory = tiny_model_dirs["gemma2"]
    stored = load_file(str(directory / "model.safetensors"))
    with open_float_weights(str(directory)) as weights:
        assert weights.fmt == "safetensors" and set(weights.names) == set(stored)
        assert weights.config["model_type"] == "gemma2" and weights.directory == directory
        for name, value in weights:
            assert value.dtype == torch.float32 and np.array_equal(value.numpy(), stored[name].astype(np.float32))
            assert weights.shapes[name] == stored[name].shape


def test_an_mlx_directory_reads_as_weight_names_with_unpacked_shapes(tmp_path, tiny_model_dirs):
    pytest.importorskip("mlx.core")
    out = layerscope.quantize(str(tiny_model_dirs["llama"]), bits=4, group_size=32, out=tmp_path / "q")
    stored = load_file(str(tiny_model_dirs["llama"] / "model.safetensors"))
    with open_float_weights(out) as weights:
        assert weights.fmt == "mlx" and set(weights.names) == set(stored)
        assert all(weights.shapes[name] == stored[name].shape for name in stored)
        assert (
            tuple(weights.tensor("model.layers.0.mlp.up_proj.weight").shape)
            == stored["model.layers.0.mlp.up_proj.weight"].shape
        )


def test_sources_that_are_not_checkpoints_are_refused(tmp_path, tiny_model_dirs):
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(LayerscopeError, match="is not a checkpoint"):
        with open_float_weights(tmp_path / "notes.txt"):
            pass
    with pytest.raises(LayerscopeError, match="has no config.json"):
        with open_float_weights(tmp_path):
            pass
    pickled = tmp_path / "pickled"
    shutil.copytree(tiny_model_dirs["llama"], pickled)
    (pickled / "model.safetensors").rename(pickled / "pytorch_model.bin")
    with pytest.raises(LayerscopeError, match="no .safetensors weights \\(it has pytorch_model.bin\\)"):
        with open_float_weights(pickled):
            pass
    with open_float_weights(tiny_model_dirs["llama"]) as weights, pytest.raises(LayerscopeError, match="no tensor"):
        weights.tensor("model.nothing.weight")


def test_tensor_error_edges():
    zero = torch.zeros(5)
    assert tensor_error(zero, zero) == {
        "relative_error": 0.0,
        "cosine": pytest.approx(float("nan"), nan_ok=True),
        "max_abs_error": 0.0,
    }
    assert np.isnan(tensor_error(zero, torch.ones(5))["relative_error"])
    a = torch.arange(1.0, 7.0).reshape(2, 3)
    assert tensor_error(a, -a)["cosine"] == -1.0 and tensor_error(a, -a)["relative_error"] == 2.0
    assert tensor_error(a, 2 * a) == {"relative_error": 1.0, "cosine": pytest.approx(1.0), "max_abs_error": 6.0}
