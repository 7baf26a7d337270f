"""``quantize --recipe``: the mixed MLX directory loads in mlx-lm with each module at its recorded bits and
layerscope reads it as ``mlx.core.dequantize`` gives it; the mixed GGUF reads back with ``gguf`` at the recorded
type per tensor; a bad recipe gets one line and exit 2."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors.numpy import load_file

import layerscope
from layerscope.cli import main
from layerscope.convert.recipe import Recipe, TensorOverride, write_recipe

mx = pytest.importorskip("mlx.core")
nn = pytest.importorskip("mlx.nn")
gguf = pytest.importorskip("gguf")


def _mlp_down_recipe(n_layers: int, bits=4, group_size=32, type_name="Q4_0", **extra) -> Recipe:
    """Every MLP down projection at 8 bits / Q8_0 and the embedding at 6 bits / F16 over the base."""
    overrides = [TensorOverride(f"model.layers.{i}.mlp.down_proj", 8, "Q8_0") for i in range(n_layers)]
    overrides.append(TensorOverride("model.embed_tokens", 6, "F16"))
    return Recipe(bits, group_size, type_name, tuple(overrides), notes=extra)


def _source_state(directory) -> dict:
    return load_file(str(directory / "model.safetensors"))


@pytest.mark.parametrize("arch", ["llama", "gemma3"])
def test_mixed_mlx_loads_in_mlx_lm_at_the_recorded_bits(tmp_path, tiny_model_dirs, arch):
    mlx_lm_utils = pytest.importorskip("mlx_lm.utils")
    source = tiny_model_dirs[arch]
    config = json.loads((source / "config.json").read_text())
    recipe = _mlp_down_recipe(config["num_hidden_layers"])
    path = write_recipe(recipe, tmp_path / "recipe.json")
    out = layerscope.quantize(str(source), recipe=path, dtype="float16", out=tmp_path / "mixed")
    written = json.loads((out / "config.json").read_text())
    assert written["quantization"] == written["quantization_config"] == recipe.mlx_quantization()

    model, _ = mlx_lm_utils.load_model(out)  # mlx-lm builds the quantized layers from the per-module entries
    state = _source_state(source)
    seen = {}
    for name, module in model.named_modules():
        if not isinstance(module, (nn.QuantizedLinear, nn.QuantizedEmbedding)):
            continue
        seen[name] = module.bits
        assert module.bits == recipe.bits_of(name) and module.group_size == 32, name
        # the oracle: MLX's own quantizer at the recorded bits, applied to the source's weight
        weight = mx.array(state[f"{name}.weight"].astype(np.float32)).astype(mx.float16)
        expected = mx.dequantize(*mx.quantize(weight, 32, module.bits), 32, module.bits)
        got = mx.dequantize(module.weight, module.scales, module.biases, module.group_size, module.bits)
        assert bool(mx.array_equal(got, expected).item()), name
    linear = {k.removesuffix(".weight") for k, v in state.items() if k.endswith(".weight") and v.ndim == 2}
    if config.get("tie_word_embeddings"):
        linear.discard("lm_head")
    assert set(seen) == linear
    assert sorted(k for k, v in seen.items() if v != 4) == sorted(recipe.modules)
    record = json.loads((out / "run.json").read_text())
    assert record["recipe"]["overrides"] == recipe.to_json()["overrides"]
    assert record["written"]["overridden"] == len(recipe.overrides)
    assert record["command"][:4] == ["layerscope", "quantize", "--dtype", "float16"]
    assert "--recipe" in record["command"]
    loaded = layerscope.load_run(out)
    assert loaded.recipe == record["recipe"] and "with 4 modules from the recipe" in loaded.summary()[0]


def test_layerscope_reads_the_mixed_mlx_directory(tmp_path, tiny_model_dirs):
    source = tiny_model_dirs["llama"]
    recipe = _mlp_down_recipe(3)
    mixed = layerscope.quantize(str(source), recipe=write_recipe(recipe, tmp_path / "r.json"), out=tmp_path / "m")
    uniform = layerscope.quantize(str(source), bits=4, group_size=32, out=tmp_path / "u")
    mixed_model, uniform_model = layerscope.load_model(str(mixed)), layerscope.load_model(str(uniform))
    # the oracle: the uniform model with the recipe's modules replaced, in plain torch, by mx.dequantize at 8 bits
    state = _source_state(source)
    mixed_state, oracle = mixed_model.module.state_dict(), uniform_model.module
    with torch.no_grad():
        for name, value in oracle.state_dict().items():
            module = name.removesuffix(".weight")
            if module in recipe.modules:
                bits = recipe.bits_of(module)
                weight = mx.array(state[name].astype(np.float32)).astype(mx.float32)
                expected = np.array(mx.dequantize(*mx.quantize(weight, 32, bits), 32, bits))
                assert np.array_equal(mixed_state[name].numpy(), expected), name
                oracle.get_parameter(name).copy_(torch.from_numpy(expected))
            else:  # where the bits agree, the weights are the uniform file's
                assert torch.equal(mixed_state[name], value), name
    ids = torch.tensor([mixed_model.encode("7+8=15 When John and Mary went")])
    with torch.no_grad():
        torch.testing.assert_close(mixed_model.module(ids).logits, oracle(ids).logits, rtol=0, atol=0)
    assert sum(p.stat().st_size for p in mixed.glob("*.safetensors")) > sum(
        p.stat().st_size for p in uniform.glob("*.safetensors")
    )


def test_mixed_gguf_reads_back_with_the_recorded_type_per_tensor(tmp_path):
    from gguf.quants import dequantize, quantize
    from tiny_gguf import write_tiny_gguf

    source = write_tiny_gguf(tmp_path / "tiny.gguf")
    recipe = _mlp_down_recipe(2, type_name="Q4_0")
    path = layerscope.quantize(
        str(source), to="gguf", recipe=write_recipe(recipe, tmp_path / "r.json"), out=tmp_path / "g"
    )
    # the names the recipe's modules get: gguf's own tensor name map for the file's architecture
    name_map = gguf.get_tensor_name_map(gguf.MODEL_ARCH.LLAMA, 2)
    expected_types = {
        name_map.get_name(f"{item.module}.weight", try_suffixes=(".weight",)): item.type for item in recipe.overrides
    }
    assert set(expected_types) == {"blk.0.ffn_down.weight", "blk.1.ffn_down.weight", "token_embd.weight"}
    reader, written = gguf.GGUFReader(str(source)), gguf.GGUFReader(str(path))
    for src, got in zip(reader.tensors, written.tensors, strict=True):
        assert got.name == src.name
        if len(src.shape) < 2:
            assert got.tensor_type == src.tensor_type
            continue
        type_name = expected_types.get(got.name, "Q4_0")
        assert got.tensor_type.name == type_name, got.name
        qtype = gguf.GGMLQuantizationType[type_name]
        values = dequantize(np.asarray(src.data), src.tensor_type).astype(np.float32)
        assert np.array_equal(np.asarray(got.data).view(np.uint8), quantize(values, qtype).view(np.uint8)), got.name
    assert written.fields["general.file_type"].contents() == int(gguf.LlamaFileType.MOSTLY_Q4_0)
    record = json.loads((path.parent / "run.json").read_text())
    assert record["recipe"]["llama_cpp_tensor_type"] == ["blk.0.ffn_down=q8_0", "blk.1.ffn_down=q8_0", "token_embd=f16"]
    assert record["written"]["overridden"] == 3
    model = layerscope.load_model(str(path))  # transformers' GGUF loader, through layerscope
    down = model.module.get_submodule("model.layers.1.mlp.down_proj").weight
    data = next(t for t in written.tensors if t.name == "blk.1.ffn_down.weight")
    assert np.array_equal(down.detach().numpy(), dequantize(np.asarray(data.data), data.tensor_type))


def _cli(capsys, *argv) -> tuple[int, list[str]]:
    code = main(["--quiet", "quantize", *map(str, argv)])
    return code, capsys.readouterr().err.strip().splitlines()


@pytest.mark.parametrize(
    ("recipe_json", "argv", "message"),
    [
        ({"overrides": [{"module": "model.layers.9.mlp.down_proj", "bits": 8, "type": "Q8_0"}]}, [],
         "the recipe names 1 module that {source} does not have: 'model.layers.9.mlp.down_proj'; nearest: "),
        ({"overrides": [{"module": "model.layers.0.mlp.down_proj", "bits": 7, "type": "Q8_0"}]}, [],
         "'model.layers.0.mlp.down_proj': bits 7 is not supported by MLX; valid: 2, 3, 4, 5, 6, 8"),
        ({"overrides": [{"module": "model.layers.0.mlp.down_proj", "bits": 8, "type": "Q4_K"}]}, [],
         "type 'Q4_K' is not a type the gguf package quantizes to"),
        ({"overrides": [{"module": "model.norm", "bits": 8, "type": "Q8_0"}]}, [],
         "'model.norm' (weight [64]) is not a matrix MLX quantizes in groups of 32"),
        ({}, ["--bits", "8"], "--bits 8 disagrees with the recipe's base (4)"),
        ({}, ["--group-size", "128"], "--group-size 128 disagrees with the recipe's base (32)"),
    ],
)  # fmt: skip
def test_bad_mlx_recipes_get_one_line_and_exit_2(tmp_path, tiny_model_dirs, capsys, recipe_json, argv, message):
    source = tiny_model_dirs["llama"]
    data = {"layerscope_recipe": 1, "base": {"bits": 4, "group_size": 32, "type": "Q4_0"}, **recipe_json}
    (tmp_path / "r.json").write_text(json.dumps(data))
    code, err = _cli(capsys, source, "--recipe", tmp_path / "r.json", *argv, "--out", tmp_path / "q")
    assert code == 2 and len(err) == 1, err
    assert message.format(source=source) in err[0]
    assert not (tmp_path / "q").exists()  # refused before anything is written


def test_a_tied_head_is_refused_for_mlx(tmp_path, tiny_model_dirs, capsys):
    recipe = Recipe(4, 32, "Q4_0", (TensorOverride("lm_head", 8, "Q8_0"),))
    code, err = _cli(
        capsys,
        tiny_model_dirs["gemma3"],
        "--recipe",
        write_recipe(recipe, tmp_path / "r.json"),
        "--out",
        tmp_path / "q",
    )
    assert code == 2 and len(err) == 1
    assert "'lm_head' is the head, tied to the embedding" in err[0] and "'model.embed_tokens'" in err[0]


def test_bad_gguf_recipes_get_one_line_and_exit_2(tmp_path, capsys):
    from tiny_gguf import write_tiny_gguf

    source = write_tiny_gguf(tmp_path / "tiny.gguf")
    cases = [
        (TensorOverride("model.layers.2.mlp.down_proj", 8, "Q8_0"),
         "the recipe names 1 module that tiny.gguf (llama, 2 blocks) does not have: 'model.layers.2.mlp.down_proj'"),
        (TensorOverride("model.layers.0.mlp.nonsense", 8, "Q8_0"), "does not have: 'model.layers.0.mlp.nonsense'"),
        (TensorOverride("model.norm", 8, "Q8_0"), "'model.norm' (output_norm.weight) is a vector, not a weight matrix"),
        (TensorOverride("model.layers.0.mlp.down_proj", 8, "TQ1_0"),
         "rows of 128 values do not divide into TQ1_0's blocks of 256; choose another type for it"),
    ]  # fmt: skip
    for override, message in cases:
        path = write_recipe(Recipe(4, 32, "Q8_0", (override,)), tmp_path / "r.json")
        code, err = _cli(capsys, source, "--to", "gguf", "--recipe", path, "--out", tmp_path / "q")
        assert code == 2 and len(err) == 1, err
        assert message in err[0]
        assert not (tmp_path / "q").exists()  # the run directory it claimed is removed again
    path = write_recipe(Recipe(4, 32, "Q4_0"), tmp_path / "r.json")
    code, err = _cli(capsys, source, "--to", "gguf", "--type", "Q5_0", "--recipe", path, "--out", tmp_path / "q")
    assert code == 2 and err == ["layerscope: error: --type Q5_0 disagrees with the recipe's base ('Q4_0'); leave it out with a recipe, "
                                 "or edit the recipe's base"]  # fmt: skip
    code, err = _cli(capsys, tmp_path / "no-model", "--to", "gguf", "--recipe", path, "--out", tmp_path / "q")
    assert code == 2 and len(err) == 1 and "no such GGUF file" in err[0]


def test_bad_recipe_files_get_one_line_and_exit_2(tmp_path, capsys):
    good = write_recipe(Recipe(4, 32, "Q4_0"), tmp_path / "good.json")
    (tmp_path / "link.json").symlink_to(good)
    (tmp_path / "broken.json").write_text('{"layerscope_recipe": 1,')
    with open(tmp_path / "big.json", "wb") as handle:
        handle.truncate(64 << 20)
    cases = {
        "link.json": "is a symbolic link; give the file itself",
        "broken.json": "is not valid JSON",
        "big.json": "is 67108864 bytes; at most",
        "missing.json": "does not exist",
    }
    for name, message in cases.items():
        code, err = _cli(capsys, "no-model", "--recipe", tmp_path / name, "--out", tmp_path / "q")
        assert code == 2 and len(err) == 1 and message in err[0], (name, err)
        assert "recipe file" in err[0]
    assert not (tmp_path / "q").exists()
