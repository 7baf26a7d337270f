"""Weight error from the checkpoints alone equals numpy on state dicts loaded independently (safetensors, mlx, gguf)."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file
from tiny_gguf import gguf_to_hf, write_tiny_gguf

import layerscope
from layerscope.convert.weight_error import COLUMNS, tensor_layer, weight_errors
from layerscope.errors import LayerscopeError

mx = pytest.importorskip("mlx.core")


def numpy_errors(reference: dict, other: dict) -> dict:
    """``{name: (relative_error, cosine, max_abs_error)}`` written from the definitions, in float64."""
    out = {}
    for name, a in reference.items():
        if name not in other:
            continue
        a, b = a.astype(np.float64).ravel(), other[name].astype(np.float64).ravel()
        norm_a, norm_b = np.sqrt((a * a).sum()), np.sqrt((b * b).sum())
        out[name] = (np.sqrt(((a - b) ** 2).sum()) / norm_a, (a * b).sum() / (norm_a * norm_b), np.abs(a - b).max())
    return out


def mlx_state(directory) -> dict:
    """The float tensors of an MLX directory, dequantized by ``mlx.core.dequantize`` (not layerscope's)."""
    import json

    quant = json.loads((directory / "config.json").read_text())["quantization"]
    stored = mx.load(str(directory / "model.safetensors"))
    out = {}
    for name, value in stored.items():
        module, _, leaf = name.rpartition(".")
        if leaf in ("scales", "biases"):
            continue
        if value.dtype == mx.uint32:
            value = mx.dequantize(
                value, stored[f"{module}.scales"], stored[f"{module}.biases"], quant["group_size"], quant["bits"]
            )
        out[name] = np.array(value.astype(mx.float32))
    return out


def check_frame(frame, expected: dict) -> None:
    assert list(frame.columns) == list(COLUMNS)
    assert sorted(frame["tensor"]) == sorted(expected)
    for row in frame.itertuples():
        relative, cosine, max_abs = expected[row.tensor]
        assert row.relative_error == pytest.approx(relative, rel=1e-9, abs=1e-12), row.tensor
        assert row.cosine == pytest.approx(cosine, rel=1e-9), row.tensor
        assert row.max_abs_error == pytest.approx(max_abs, rel=1e-6, abs=1e-12), row.tensor


@pytest.mark.parametrize("arch", ["llama", "gemma3"])
def test_hf_against_mlx_equals_numpy(tmp_path, tiny_model_dirs, arch):
    source = tiny_model_dirs[arch]
    quantized = layerscope.quantize(str(source), to="mlx", bits=4, group_size=32, dtype="float16", out=tmp_path / "q")
    reference = {k: v.astype(np.float32) for k, v in load_file(str(source / "model.safetensors")).items()}
    expected = numpy_errors(reference, mlx_state(quantized))
    frame = weight_errors(str(source), str(quantized))
    check_frame(frame, expected)
    assert (frame["relative_error"] > 0).any() and (frame["cosine"] > 0.99).all()
    norms = frame[frame["tensor"].str.contains("norm")]
    assert len(norms) and (norms["relative_error"] < 1e-3).all()  # float16 casts only, no quantization
    assert frame.loc[frame["tensor"] == "model.embed_tokens.weight", "layer"].item() == "embed"
    order = list(dict.fromkeys(frame["layer"].fillna("none")))
    assert order == ["embed", "0", "1", "2", "norm"] + (["none"] if arch == "llama" else [])  # lm_head last
    assert frame.loc[frame["tensor"] == "model.norm.weight", "layer"].item() == "norm"
    shape = reference["model.embed_tokens.weight"].shape
    assert frame.loc[frame["tensor"] == "model.embed_tokens.weight", "shape"].item() == f"{shape[0]}x{shape[1]}"


def test_a_loaded_model_lists_a_tied_head_once(tiny_models):
    frame = weight_errors(tiny_models["gemma3"], tiny_models["gemma3"])  # Gemma 3 ties its head to the embedding
    assert "model.embed_tokens.weight" in set(frame["tensor"]) and "lm_head.weight" not in set(frame["tensor"])
    assert (frame["relative_error"] == 0).all()


def test_a_loaded_model_against_its_own_directory_is_exact(tiny_model_dirs, tiny_models):
    frame = weight_errors(tiny_models["qwen3"], str(tiny_model_dirs["qwen3"]))
    assert len(frame) == len(load_file(str(tiny_model_dirs["qwen3"] / "model.safetensors")))
    assert (frame["relative_error"] == 0).all() and (frame["max_abs_error"] == 0).all()
    assert np.allclose(frame["cosine"], 1.0, rtol=0, atol=1e-12)


def test_gguf_against_its_requantization_equals_numpy(tmp_path, monkeypatch):
    gguf = pytest.importorskip("gguf")
    from gguf.quants import dequantize

    monkeypatch.setenv("LAYERSCOPE_CACHE", str(tmp_path / "cache"))
    source = write_tiny_gguf(tmp_path / "tiny.gguf")
    other = layerscope.quantize(str(source), to="gguf", type="Q4_0", out=tmp_path / "q4_0")

    def read(path) -> dict:
        return {gguf_to_hf(t.name): dequantize(t.data, t.tensor_type) for t in gguf.GGUFReader(str(path)).tensors}

    # transformers permutes Llama's q/k rows; the same permutation on both sides leaves all three numbers unchanged
    frame = weight_errors(str(source), str(other))
    check_frame(frame, numpy_errors(read(source), read(other)))
    assert frame.loc[frame["tensor"] == "lm_head.weight", "layer"].isna().all()
    assert set(frame["layer"].dropna()) == {"embed", "0", "1", "norm"}


def test_tensor_layer_names_every_tiny_architecture(tiny_model_dirs):
    for arch, directory in tiny_model_dirs.items():
        for name in load_file(str(directory / "model.safetensors")):
            layer = tensor_layer(name)
            if name.startswith("model.layers."):
                assert layer == name.split(".")[2], (arch, name)
            elif name.startswith("model.embed_tokens."):
                assert layer == "embed"
            elif name.startswith("model.norm."):
                assert layer == "norm"
            else:
                assert layer is None, (arch, name)
    assert tensor_layer("transformer.h.3.attn.c_attn.weight") == "3"
    assert tensor_layer("transformer.wte.weight") == "embed" and tensor_layer("transformer.ln_f.weight") == "norm"


def test_different_shapes_or_no_shared_names_are_refused(tmp_path, tiny_model_dirs):
    source = tiny_model_dirs["llama"]
    changed = tmp_path / "changed"
    shutil.copytree(source, changed)
    tensors = load_file(str(source / "model.safetensors"))
    tensors["model.layers.1.mlp.up_proj.weight"] = tensors["model.layers.1.mlp.up_proj.weight"][:-1]
    save_file(tensors, str(changed / "model.safetensors"), metadata={"format": "pt"})
    with pytest.raises(LayerscopeError, match=r"model\.layers\.1\.mlp\.up_proj\.weight has shape"):
        weight_errors(str(source), str(changed))
    renamed = tmp_path / "renamed"
    shutil.copytree(source, renamed)
    save_file({f"x.{k}": v for k, v in tensors.items()}, str(renamed / "model.safetensors"), metadata={"format": "pt"})
    with pytest.raises(LayerscopeError, match="share no tensor names"):
        weight_errors(str(source), str(renamed))


_UNDER_LIMIT = """
import re, resource, sys
from layerscope.convert.float_weights import open_float_weights
from layerscope.convert.weight_error import weight_errors
with open_float_weights(sys.argv[1]):  # what opening a checkpoint imports, before the limit
    pass
import pandas  # the table's library (with pyarrow, where installed, several hundred MB of mapped libraries)
size = int(re.search(r"VmSize:\\s+(\\d+)", open("/proc/self/status").read()).group(1)) * 1024
limit = size + 250 * 2**20
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
frame = weight_errors(sys.argv[1], sys.argv[1])
print(len(frame), frame["parameters"].sum(), frame["relative_error"].max(), frame["max_abs_error"].max())
"""


def test_the_comparison_streams_within_an_address_space_limit(tmp_path):
    """A checkpoint of 400 MB compared with itself needs less than 250 MB of address space beyond what the
    process already has: each side is read piece by piece from its file, never mapped or held whole (a map of the
    file on each side needs 800 MB)."""
    import json
    import os
    import struct
    import subprocess
    import sys
    from pathlib import Path

    directory = tmp_path / "big"
    directory.mkdir()
    (directory / "config.json").write_text(json.dumps({"model_type": "llama", "architectures": ["LlamaForCausalLM"]}))
    shapes = {"model.embed_tokens.weight": (50_000, 1000), "model.layers.0.mlp.up_proj.weight": (1000, 50_000)}
    header, offset = {}, 0
    for name, shape in shapes.items():
        header[name] = {
            "dtype": "F32",
            "shape": list(shape),
            "data_offsets": [offset, offset + 4 * shape[0] * shape[1]],
        }
        offset = header[name]["data_offsets"][1]
    raw = json.dumps(header).encode()
    with open(directory / "model.safetensors", "wb") as handle:  # zeros, sparse on disk
        handle.write(struct.pack("<Q", len(raw)) + raw)
        handle.truncate(8 + len(raw) + offset)
    src = str(Path(__file__).resolve().parents[2] / "src")
    env = {**os.environ, "PYTHONPATH": src, "OMP_NUM_THREADS": "1", "MALLOC_ARENA_MAX": "2"}
    done = subprocess.run(
        [sys.executable, "-c", _UNDER_LIMIT, str(directory)], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["2", "100000000", "0.0", "0.0"]


def test_one_checkpoint_in_two_dtypes_shows_the_cast(tiny_model_dirs):
    """Two specs of one directory, float32 and bfloat16: the error is the bfloat16 rounding of each tensor (numpy
    oracle on the file's float32 values), not 0."""
    import torch

    source = str(tiny_model_dirs["llama"])
    frame = weight_errors(layerscope.ModelSpec(source), layerscope.ModelSpec(source, dtype="bfloat16"))
    tensors = load_file(str(tiny_model_dirs["llama"] / "model.safetensors"))
    cast = {name: torch.from_numpy(value).to(torch.bfloat16).float().numpy() for name, value in tensors.items()}
    check_frame(frame, numpy_errors(tensors, cast))
    assert (frame["relative_error"] > 0).any()
    same = weight_errors(layerscope.ModelSpec(source, dtype="bfloat16"), layerscope.ModelSpec(source, dtype="bfloat16"))
    assert (same["relative_error"] == 0).all()
