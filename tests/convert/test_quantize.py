"""``layerscope.quantize``: options checked before anything is read, output written whole or not at all,
and the default model re-quantized to MLX 4-bit equal to ``mlx.core.quantize``."""

from __future__ import annotations

import json

import numpy as np
import pytest

import layerscope
from layerscope.convert import mlx_write
from layerscope.errors import LayerscopeError
from layerscope.experiment import ConfigError

mx = pytest.importorskip("mlx.core")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"to": "onnx"}, "to='onnx' is not a format quantize writes; valid: 'mlx', 'gguf'"),
        ({"bits": 7}, "bits=7 is not supported by MLX; valid: 2, 3, 4, 5, 6, 8"),
        ({"bits": True}, "bits=True is not supported"),
        ({"group_size": 16}, "group_size=16 is not supported by MLX; valid: 32, 64, 128"),
        ({"dtype": "int8"}, "dtype='int8' is not supported; valid: 'float16', 'bfloat16', 'float32'"),
        ({"to": "gguf", "type": "Q4_K"}, "type='Q4_K' is not a type the gguf package quantizes to; valid: 'F32'"),
        ({"to": "gguf", "out": "x"}, "must name a .gguf file"),
        ({"out": ""}, "out='' is not a path"),
    ],
)
def test_bad_options_are_refused_before_reading(tmp_path, options, message):
    options = {"out": tmp_path / "q", **options}
    with pytest.raises(ConfigError) as info:
        layerscope.quantize(str(tmp_path / "no-such-model"), **options)  # the source is never looked at
    assert message in str(info.value)
    assert not list(tmp_path.iterdir())


def test_an_existing_out_needs_force_and_is_then_replaced(tmp_path, tiny_model_dirs):
    source = str(tiny_model_dirs["llama"])
    out = tmp_path / "q"
    out.mkdir()  # an empty directory is fine
    layerscope.quantize(source, bits=8, group_size=32, out=out)
    with pytest.raises(ConfigError, match="exists"):
        layerscope.quantize(source, bits=4, group_size=32, out=out)
    assert json.loads((out / "config.json").read_text())["quantization"]["bits"] == 8
    (out / "stale.txt").write_text("from before")
    layerscope.quantize(source, bits=4, group_size=32, out=out, force=True)
    assert json.loads((out / "config.json").read_text())["quantization"]["bits"] == 4
    assert not (out / "stale.txt").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["q"]  # no temporary directory left
    (tmp_path / "link").symlink_to(out)
    with pytest.raises(ConfigError, match="symbolic link"):
        layerscope.quantize(source, out=tmp_path / "link", force=True)


@pytest.mark.parametrize("interruption", [KeyboardInterrupt, RuntimeError])
def test_an_interrupted_run_leaves_nothing(tmp_path, tiny_model_dirs, monkeypatch, interruption):
    real = mlx_write._save_shards

    def save_then_fail(arrays, out, parameters):
        real(arrays, out, parameters)  # the weights are on disk when the run stops
        raise interruption()

    monkeypatch.setattr(mlx_write, "_save_shards", save_then_fail)
    with pytest.raises(interruption):
        layerscope.quantize(str(tiny_model_dirs["llama"]), bits=4, group_size=32, out=tmp_path / "q")
    assert not list(tmp_path.iterdir())
    (tmp_path / "kept").mkdir()
    (tmp_path / "kept" / "config.json").write_text("{}")
    with pytest.raises(interruption):  # with --force, the old output stays until the new one is complete
        layerscope.quantize(str(tiny_model_dirs["llama"]), bits=4, group_size=32, out=tmp_path / "kept", force=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kept"]
    assert (tmp_path / "kept" / "config.json").read_text() == "{}"


@pytest.mark.default_model
def test_default_model_to_mlx_4bit_equals_mlx_quantize(tmp_path):
    """The default model (its Q4_K_M GGUF, dequantized) re-quantized to MLX 4-bit: the triplets of the embedding
    and of one block equal ``mlx.core.quantize``, layerscope loads the directory, norms are exact."""
    from safetensors import safe_open

    from layerscope.convert.float_weights import open_float_weights

    out = layerscope.quantize(to="mlx", bits=4, group_size=64, out=tmp_path / "gemma-mlx-4bit")
    written = mx.load(str(out / "model.safetensors"))
    config = json.loads((out / "config.json").read_text())
    assert config["quantization"] == {"group_size": 64, "bits": 4, "mode": "affine"}
    names = [
        "model.embed_tokens.weight",
        "model.layers.5.self_attn.k_proj.weight",
        "model.layers.17.mlp.down_proj.weight",
    ]
    dequantized = {}
    with open_float_weights("default") as weights:
        dtype = getattr(mx, mlx_write.conversion_dtype(weights.config, None))
        expected_names = set()
        for name in weights.names:  # every matrix (widths 640, 1024, 2048) is quantized, every vector kept
            module = name.removesuffix(".weight")
            matrix = len(weights.shapes[name]) == 2
            expected_names |= {f"{module}.weight", f"{module}.scales", f"{module}.biases"} if matrix else {name}
        assert set(written) == expected_names
        for name in names:
            q, s, b = mx.quantize(mx.array(weights.tensor(name).numpy()).astype(dtype), 64, 4)
            module = name[: -len(".weight")]
            for part, expected in zip(("weight", "scales", "biases"), (q, s, b)):
                assert mx.array_equal(written[f"{module}.{part}"], expected).item(), (name, part)
            dequantized[name] = np.array(mx.dequantize(q, s, b, 64, 4).astype(mx.float32))
        norm = weights.tensor("model.norm.weight").numpy()
    with safe_open(str(out / "model.safetensors"), framework="numpy") as handle:
        assert handle.metadata() == {"format": "mlx"}
        assert np.array_equal(handle.get_tensor("model.norm.weight"), norm)  # float32, as the config's dtype
    model = layerscope.load_model(str(out))  # layerscope's loader: weights equal mlx.core.dequantize
    assert (model.n_layers, model.d_model, model.name) == (18, 640, "gemma-mlx-4bit")
    state = model.module.state_dict()
    for name, expected in dequantized.items():
        assert np.array_equal(state[name].numpy(), expected), name
    ids = model.tokenizer("The capital of France is", return_tensors="pt").input_ids
    import torch

    with torch.no_grad():
        logits = model.module(ids).logits[0, -1]
    assert torch.isfinite(logits).all()


def test_without_mlx_the_mlx_output_is_refused_in_one_line(tmp_path, tiny_model_dirs, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "mlx.core", None)  # as if the package were not installed
    with pytest.raises(LayerscopeError, match=r"MLX output needs the mlx package .*pip install 'layerscope\[mlx\]'"):
        layerscope.quantize(str(tiny_model_dirs["llama"]), out=tmp_path / "q")
    assert not list(tmp_path.iterdir())
