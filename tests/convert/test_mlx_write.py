"""MLX quantization: the written triplets equal ``mlx.core.quantize`` bit for bit, in mlx-lm's layout, and
layerscope reads them back as ``mlx.core.dequantize`` gives them."""

from __future__ import annotations

import json

import numpy as np
import pytest
from safetensors import safe_open
from safetensors.numpy import load_file

import layerscope
from layerscope.convert import mlx_write
from layerscope.convert.float_weights import open_float_weights
from layerscope.models.mlx import mlx_state_dict

mx = pytest.importorskip("mlx.core")


def _equal(a, b) -> bool:
    return a.dtype == b.dtype and a.shape == b.shape and bool(mx.array_equal(a, b).item())


def _check_against_mlx(source_dir, out, bits, group_size, dtype):
    """Every tensor of ``out`` against ``mlx.core.quantize`` / a cast of the source (read with safetensors)."""
    source = load_file(str(source_dir / "model.safetensors"))
    written = mx.load(str(out / "model.safetensors"))
    config = json.loads((source_dir / "config.json").read_text())
    expected_names = set()
    quantized = []
    for name, value in source.items():
        if name == "lm_head.weight" and config.get("tie_word_embeddings"):
            continue
        array = mx.array(value.astype(np.float32)).astype(getattr(mx, dtype))
        if name.endswith(".weight") and value.ndim == 2 and value.shape[-1] % group_size == 0:
            module = name[: -len(".weight")]
            q, s, b = mx.quantize(array, group_size, bits)  # the oracle: MLX's own quantizer
            assert _equal(written[f"{module}.weight"], q) and written[f"{module}.weight"].dtype == mx.uint32
            assert _equal(written[f"{module}.scales"], s) and _equal(written[f"{module}.biases"], b)
            expected_names |= {f"{module}.weight", f"{module}.scales", f"{module}.biases"}
            quantized.append((name, mx.dequantize(q, s, b, group_size, bits)))
        else:
            assert _equal(written[name], array), name
            expected_names.add(name)
    assert set(written) == expected_names
    return dict(quantized)


@pytest.mark.parametrize(
    ("arch", "bits", "group_size", "dtype"),
    [
        ("gemma3", 4, 32, None),
        ("llama", 8, 64, "float16"),
        ("qwen3", 3, 32, "bfloat16"),
        ("olmo3", 2, 64, "float32"),
        ("gemma2", 6, 32, "bfloat16"),
        ("llama", 5, 128, "float16"),
    ],
)
def test_written_triplets_equal_mlx_quantize(tmp_path, tiny_model_dirs, arch, bits, group_size, dtype):
    source = tiny_model_dirs[arch]
    out = layerscope.quantize(str(source), to="mlx", bits=bits, group_size=group_size, dtype=dtype, out=tmp_path / "q")
    config = json.loads((source / "config.json").read_text())
    used = dtype or mlx_write.conversion_dtype(config, None)
    dequantized = _check_against_mlx(source, out, bits, group_size, used)
    assert dequantized, "some matrix is quantized"
    # mlx-lm's layout: the quantization block (and its copy), {"format": "mlx"}, the tokenizer beside
    written_config = json.loads((out / "config.json").read_text())
    block = {"group_size": group_size, "bits": bits, "mode": "affine"}
    assert written_config["quantization"] == block and written_config["quantization_config"] == block
    with safe_open(str(out / "model.safetensors"), framework="numpy") as handle:
        assert handle.metadata() == {"format": "mlx"}
    assert {"tokenizer.json", "tokenizer_config.json"} <= {p.name for p in out.iterdir()}
    index = json.loads((out / "model.safetensors.index.json").read_text())  # mlx-lm writes one for one file too
    assert index["weight_map"] == dict.fromkeys(sorted(mx.load(str(out / "model.safetensors"))), "model.safetensors")
    stored = load_file(str(source / "model.safetensors"))
    tied = "lm_head.weight" in stored and config.get("tie_word_embeddings")
    assert index["metadata"]["total_parameters"] == sum(
        v.size for k, v in stored.items() if not (tied and k == "lm_head.weight")
    )
    # layerscope's loader gives mlx.core.dequantize of what was written, bit for bit
    state = mlx_state_dict(out)
    for name, expected in dequantized.items():
        assert np.array_equal(state[name].numpy(), np.array(expected.astype(mx.float32))), name
    model = layerscope.load_model(str(out))
    assert model.n_layers == config["num_hidden_layers"] and model.name == "q"


def test_norms_stay_float_and_a_tied_head_is_not_stored(tmp_path, tiny_model_dirs):
    out = layerscope.quantize(str(tiny_model_dirs["gemma3"]), to="mlx", bits=4, group_size=32, out=tmp_path / "q")
    with safe_open(str(out / "model.safetensors"), framework="pt") as handle:
        names = set(handle.keys())
        assert "lm_head.weight" not in names  # tied to the embedding, as mlx-lm saves it
        assert "model.embed_tokens.scales" in names  # the embedding is quantized
        norms = [n for n in names if "norm" in n]
        assert norms and all(handle.get_tensor(n).dtype.is_floating_point for n in norms)
        assert not any(n.endswith((".scales", ".biases")) and "norm" in n for n in names)


def test_an_mlx_source_is_dequantized_then_quantized_again(tmp_path, tiny_model_dirs):
    first = layerscope.quantize(str(tiny_model_dirs["llama"]), to="mlx", bits=8, group_size=32, out=tmp_path / "q8")
    second = layerscope.quantize(str(first), to="mlx", bits=4, group_size=64, out=tmp_path / "q4")
    written = mx.load(str(second / "model.safetensors"))
    with open_float_weights(first) as weights:
        value = weights.tensor("model.layers.0.mlp.up_proj.weight")
    dtype = getattr(mx, mlx_write.conversion_dtype(json.loads((second / "config.json").read_text()), None))
    q, s, b = mx.quantize(mx.array(value.numpy()).astype(dtype), 64, 4)
    assert _equal(written["model.layers.0.mlp.up_proj.weight"], q) and _equal(
        written["model.layers.0.mlp.up_proj.scales"], s
    )


def test_large_models_are_sharded_with_an_index(tmp_path, tiny_model_dirs, monkeypatch):
    monkeypatch.setattr(mlx_write, "SHARD_BYTES", 20_000)
    source = tiny_model_dirs["qwen3"]
    out = layerscope.quantize(str(source), to="mlx", bits=4, group_size=32, out=tmp_path / "q")
    index = json.loads((out / "model.safetensors.index.json").read_text())
    files = sorted(set(index["weight_map"].values()))
    assert len(files) > 1 and files[0] == f"model-00001-of-{len(files):05d}.safetensors"
    assert sorted(p.name for p in out.glob("*.safetensors")) == files
    written = {}
    for file in files:
        written.update(mx.load(str(out / file)))
    assert set(index["weight_map"]) == set(written)
    monkeypatch.undo()
    whole = layerscope.quantize(str(source), to="mlx", bits=4, group_size=32, out=tmp_path / "whole")
    single = mx.load(str(whole / "model.safetensors"))
    assert set(single) == set(written) and all(_equal(single[k], written[k]) for k in single)
    state, state_whole = mlx_state_dict(out), mlx_state_dict(whole)
    assert all(np.array_equal(state[k].numpy(), state_whole[k].numpy()) for k in state_whole)


def test_which_tensors_mlx_lm_quantizes():
    assert mlx_write.quantizes("model.layers.0.mlp.up_proj.weight", (128, 64), 64)
    assert mlx_write.quantizes("model.embed_tokens.weight", (420, 64), 32)
    assert not mlx_write.quantizes("model.layers.0.mlp.up_proj.weight", (128, 64), 128)  # width not a multiple
    assert not mlx_write.quantizes("model.norm.weight", (64,), 32)
    assert not mlx_write.quantizes("model.layers.0.self_attn.q_proj.bias", (64, 64), 32)
    assert mlx_write.conversion_dtype({"torch_dtype": "bfloat16"}, None) == "bfloat16"
    assert mlx_write.conversion_dtype({"dtype": "float32"}, None) == "float32"
    assert mlx_write.conversion_dtype({}, None) == "float16"
    assert mlx_write.conversion_dtype({"dtype": "float32"}, "float16") == "float16"


# Llama and Qwen 3 only: mlx-lm's Gemma 3 needs at least six blocks (the tiny one has three), and its OLMo 3 wants
# the rope_theta that transformers 5 configs keep in rope_parameters
@pytest.mark.parametrize(("arch", "bits"), [("llama", 4), ("qwen3", 8), ("qwen3", 3)])
def test_mlx_lm_loads_the_directory_and_agrees_with_layerscope(tmp_path, tiny_model_dirs, arch, bits):
    """mlx-lm's own loader reads the directory (strict weight loading) and its logits match layerscope's."""
    mlx_lm = pytest.importorskip("mlx_lm")
    import torch

    out = layerscope.quantize(str(tiny_model_dirs[arch]), bits=bits, group_size=32, dtype="float32", out=tmp_path / "q")
    mlx_model, _ = mlx_lm.load(str(out))
    model = layerscope.load_model(str(out))
    ids = [2, 40, 41, 42, 43, 44, 45]
    theirs = np.array(mlx_model(mx.array([ids]))[0].astype(mx.float32))
    with torch.no_grad():
        ours = model.module(torch.tensor([ids])).logits[0].numpy()
    assert np.abs(ours - theirs).max() < 1e-3 * max(1.0, np.abs(ours).max())
    assert (ours.argmax(-1) == theirs.argmax(-1)).all()
