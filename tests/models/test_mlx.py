"""MLX-quantized models: dequantization equals ``mlx.core.dequantize``; an MLX directory loads like HF."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from layerscope import load_model
from layerscope.checkpoints import read_layout
from layerscope.cli import main
from layerscope.errors import LayerscopeError
from layerscope.models.mlx_dequant import dequantize, unpack_codes

mx = pytest.importorskip("mlx.core")

_MX_TO_TORCH = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def _to_torch(array):
    name = str(array.dtype).split(".")[-1]
    if name == "uint32":
        return torch.from_numpy(np.array(array).view(np.int32)).view(torch.uint32)
    return torch.from_numpy(np.array(array.astype(mx.float32))).to(_MX_TO_TORCH[name])


@pytest.mark.parametrize("bits", [2, 3, 4, 5, 6, 8])
@pytest.mark.parametrize("group_size", [32, 64, 128])
@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32"])
def test_dequantize_equals_mlx(bits, group_size, dtype):
    rng = np.random.default_rng(bits * 1000 + group_size)
    w = mx.array((rng.standard_normal((3, 5, 384)) * rng.uniform(0.01, 3)).astype(np.float32)).astype(
        getattr(mx, dtype)
    )
    q, s, b = mx.quantize(w, group_size, bits)
    expected = mx.dequantize(q, s, b, group_size, bits)
    got = dequantize(_to_torch(q), _to_torch(s), _to_torch(b), bits, group_size)
    assert got.dtype == _MX_TO_TORCH[dtype] and tuple(got.shape) == (3, 5, 384)
    assert torch.equal(got.float(), _to_torch(expected).float())


def test_unpack_codes_by_hand():
    # 3-bit codes 0..7 packed little-endian: 0 | 1<<3 | 2<<6 | ... | 7<<21 in the first 3 bytes.
    word = sum(i << (3 * i) for i in range(8))
    packed = torch.tensor([[word, 0, 0]], dtype=torch.int64).to(torch.uint32)
    assert unpack_codes(packed, 3)[0, :8].tolist() == list(range(8))
    assert unpack_codes(torch.tensor([[0xFF00FF00]], dtype=torch.int64).to(torch.uint32), 8).tolist() == [
        [0, 255, 0, 255]
    ]


def test_dequantize_refuses_wrong_bits():
    q, s, b = mx.quantize(mx.random.normal((4, 128)), 64, 4)
    with pytest.raises(LayerscopeError, match="do not match"):
        dequantize(_to_torch(q), _to_torch(s), _to_torch(b), 8, 64)


# ----- whole models --------------------------------------------------------------------------------


def _linear_modules(module) -> list[str]:
    return [name for name, sub in module.named_modules() if isinstance(sub, (torch.nn.Linear, torch.nn.Embedding))]


@pytest.mark.parametrize("arch", ["llama", "gemma3"])
def test_mlx_dir_loads_and_matches_hf_on_dequantized_weights(tmp_path, tiny_model_dirs, tiny_models, arch):
    from mlx_writer import save_mlx_dir
    from transformers import AutoModelForCausalLM

    reference = tiny_models[arch].module
    source = tiny_model_dirs[arch]
    config = json.loads((source / "config.json").read_text())
    modules = [m for m in _linear_modules(reference) if m != "lm_head" or not config.get("tie_word_embeddings")]
    specs = {m: (4, 32) for m in modules}
    overrides = {
        modules[1]: (8, 64),
        modules[2]: (3, 32),
        modules[3]: (6, 64),
        modules[4]: (2, 32),
        modules[5]: (5, 32),
    }
    specs.update(overrides)
    unquantized = modules[6]
    del specs[unquantized]
    quantization = {"group_size": 32, "bits": 4, "mode": "affine", unquantized: False}
    quantization.update({m: {"bits": b, "group_size": g} for m, (b, g) in overrides.items()})
    state = {
        k: v
        for k, v in reference.state_dict().items()
        if k != "lm_head.weight" or not config.get("tie_word_embeddings")
    }
    out = tmp_path / f"{arch}-mlx"
    dequantized = save_mlx_dir(state, config, out, specs, copy_from=source, quantization=quantization)

    oracle = AutoModelForCausalLM.from_pretrained(source, dtype=torch.float32).eval()
    oracle.load_state_dict(dequantized, strict=False)
    oracle.tie_weights()
    model = load_model(str(out))
    ids = torch.tensor([model.encode("7+8=15 When John and Mary went")])
    with torch.no_grad():
        torch.testing.assert_close(model.module(ids).logits, oracle(ids).logits, rtol=0, atol=1e-6)
    assert model.n_layers == 3 and model.complete("1+1=", 3) == model.complete("1+1=", 3)

    layout = read_layout(out)
    by_name = {t.name: t for t in layout.tensors}
    for module, (bits, group) in specs.items():
        assert by_name[module].quant == f"affine {bits}-bit g{group}"
        assert by_name[module].shape == tuple(reference.get_submodule(module).weight.shape)
    assert f"{unquantized}.weight" in by_name


def test_mlx_bits_mismatch_is_refused(tmp_path, tiny_model_dirs, tiny_models, capsys):
    from mlx_writer import save_mlx_dir

    source = tiny_model_dirs["llama"]
    config = json.loads((source / "config.json").read_text())
    state = tiny_models["llama"].module.state_dict()
    specs = {m: (4, 32) for m in _linear_modules(tiny_models["llama"].module)}
    out = tmp_path / "lying"
    save_mlx_dir(state, config, out, specs, copy_from=source, quantization={"group_size": 32, "bits": 8})
    with pytest.raises(LayerscopeError, match="8-bit codes in group size 32 do not match"):
        load_model(str(out))
    assert main(["layout", str(out)]) == 2
    assert main(["layout", str(out / "model.safetensors")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all("do not match the packed shapes" in line for line in err)


def test_mlx_layout_without_config_infers_bits(tmp_path):
    from mlx_writer import save_mlx_dir

    w = torch.randn(96, 768)
    save_mlx_dir({"dense.0.weight": w, "norm.weight": torch.ones(768)}, {}, tmp_path, {"dense.0": (8, 64)})
    (tmp_path / "config.json").unlink()
    (tensor,) = [t for t in read_layout(tmp_path).tensors if t.name == "dense.0"]
    assert tensor.shape == (96, 768) and tensor.quant == "affine 8-bit g64 (inferred)"


def test_mlx_triplet_with_mismatched_biases_is_refused(tmp_path):
    from safetensors.numpy import save_file

    q, s, b = (np.array(a) for a in mx.quantize(mx.random.normal((8, 128)), 64, 4))
    save_file(
        {"lin.weight": q, "lin.scales": s.astype(np.float16), "lin.biases": b[:, :1].astype(np.float16)},
        str(tmp_path / "model.safetensors"),
    )
    with pytest.raises(LayerscopeError, match="must share one shape"):
        read_layout(tmp_path)
