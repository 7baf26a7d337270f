"""Recipe files: the views equal mlx-lm's block and gguf's tensor names, a file round-trips, a bad one is refused
in one line."""

from __future__ import annotations

import json
import os

import pytest

from layerscope.convert.recipe import (
    MAX_RECIPE_BYTES,
    RECIPE_NAME,
    Recipe,
    TensorOverride,
    gguf_tensor_name,
    read_recipe,
    write_recipe,
)
from layerscope.errors import LayerscopeError
from layerscope.rundir import RunDir

gguf = pytest.importorskip("gguf")

DOWN_12 = TensorOverride("model.layers.12.mlp.down_proj", 8, "Q8_0")
Q_3 = TensorOverride("model.layers.3.self_attn.q_proj", 6, "Q5_1")


def _recipe(**notes) -> Recipe:
    return Recipe(bits=4, group_size=64, type="Q4_0", overrides=(DOWN_12, Q_3), notes=notes)


def test_mlx_quantization_is_mlx_lm_block_with_per_module_entries():
    assert _recipe().mlx_quantization() == {
        "group_size": 64,
        "bits": 4,
        "mode": "affine",
        "model.layers.12.mlp.down_proj": {"group_size": 64, "bits": 8},
        "model.layers.3.self_attn.q_proj": {"group_size": 64, "bits": 6},
    }
    assert _recipe().bits_of("model.layers.12.mlp.down_proj") == 8
    assert _recipe().bits_of("model.layers.0.mlp.down_proj") == 4
    assert _recipe().type_of("model.layers.3.self_attn.q_proj") == "Q5_1"
    assert _recipe().type_of("model.embed_tokens") == "Q4_0"


def test_llama_cpp_tensor_types_use_gguf_name_map():
    # the oracle: gguf's own map for the architecture, and the names llama.cpp's gemma3 files carry
    name_map = gguf.get_tensor_name_map(gguf.MODEL_ARCH.GEMMA3, 26)
    expected = [
        name_map.get_name("model.layers.12.mlp.down_proj.weight", try_suffixes=(".weight",)).removesuffix(".weight"),
        name_map.get_name("model.layers.3.self_attn.q_proj.weight", try_suffixes=(".weight",)).removesuffix(".weight"),
    ]
    assert expected == ["blk.12.ffn_down", "blk.3.attn_q"]
    assert _recipe().llama_cpp_tensor_types("gemma3", 26) == [f"{expected[0]}=q8_0", f"{expected[1]}=q5_1"]
    assert gguf_tensor_name("model.embed_tokens", "gemma3", 26) == "token_embd"


def test_unknown_module_or_architecture_is_refused_for_gguf_names():
    with pytest.raises(LayerscopeError, match="'model.layers.3.mlp.nonsense' has no GGUF tensor name"):
        gguf_tensor_name("model.layers.3.mlp.nonsense", "gemma3", 26)
    with pytest.raises(LayerscopeError, match="block 30|no GGUF tensor name"):
        gguf_tensor_name("model.layers.30.mlp.down_proj", "gemma3", 26)  # past the model's blocks
    with pytest.raises(LayerscopeError, match="GGUF architecture 'gemma99' is not one gguf knows; valid: "):
        gguf_tensor_name("model.layers.3.mlp.down_proj", "gemma99", 26)


def test_file_round_trips_through_a_path_and_a_run_dir(tmp_path):
    recipe = _recipe(kl_removed=0.41, source_run="runs/sensitivity-1")
    path = write_recipe(recipe, tmp_path / "r.json", gguf_arch="gemma3", n_blocks=26)
    data = json.loads(path.read_text())
    assert data["layerscope_recipe"] == 1
    assert data["base"] == {"bits": 4, "group_size": 64, "type": "Q4_0"}
    assert data["overrides"][0] == {"module": "model.layers.12.mlp.down_proj", "bits": 8, "type": "Q8_0"}
    assert data["llama_cpp_tensor_type"] == ["blk.12.ffn_down=q8_0", "blk.3.attn_q=q5_1"]
    assert data["mlx_quantization"] == recipe.mlx_quantization()
    back = read_recipe(path)
    assert back == recipe
    assert back.notes == {"kl_removed": 0.41, "source_run": "runs/sensitivity-1"}
    run_dir = RunDir(tmp_path / "run")
    (tmp_path / "run").mkdir()
    written = write_recipe(recipe, run_dir)
    assert written == tmp_path / "run" / RECIPE_NAME
    assert read_recipe(written) == recipe
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == [RECIPE_NAME]  # no temporary left


def test_to_json_without_an_architecture_still_names_gguf_tensors():
    assert _recipe().to_json()["llama_cpp_tensor_type"] == ["blk.12.ffn_down=q8_0", "blk.3.attn_q=q5_1"]
    assert _recipe(gguf_arch="gemma3").to_json()["llama_cpp_tensor_type"][0] == "blk.12.ffn_down=q8_0"


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: Recipe(7, 64, "Q4_0"), "recipe base: bits 7 is not supported by MLX; valid: 2, 3, 4, 5, 6, 8"),
        (lambda: Recipe(True, 64, "Q4_0"), "recipe base: bits True is not supported"),
        (lambda: Recipe(4, 48, "Q4_0"), "recipe base: group_size 48 is not supported by MLX; valid: 32, 64, 128"),
        (lambda: Recipe(4, 64, "Q4_K"), "recipe base: type 'Q4_K' is not a type the gguf package quantizes to"),
        (lambda: TensorOverride("model.layers.1.mlp.up_proj", 1, "Q8_0"), "'model.layers.1.mlp.up_proj': bits 1"),
        (lambda: TensorOverride("model.layers.1.mlp.up_proj", 8, "q8_0"), "type 'q8_0' is not a type"),
        (lambda: TensorOverride("model.layers.1.mlp.up_proj.weight", 8, "Q8_0"), "name its module instead"),
        (lambda: TensorOverride("blk.1 ffn_up", 8, "Q8_0"), "'blk.1 ffn_up' is not a module path"),
        (lambda: Recipe(4, 64, "Q4_0", (DOWN_12, DOWN_12)), "overrides module 'model.layers.12.mlp.down_proj' twice"),
    ],
)
def test_bad_values_are_refused_in_one_line(make, message):
    with pytest.raises(LayerscopeError) as info:
        make()
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def _good() -> dict:
    return _recipe().to_json()


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d.update(layerscope_recipe=2), "layerscope_recipe 2 is not a recipe version"),
        (lambda d: d.update(overide=[]), "key 'overide' is not part of a recipe; valid: 'layerscope_recipe'"),
        (lambda d: d["base"].pop("type"), "base: 'type' is missing"),
        (lambda d: d["base"].update(bits="4"), "recipe base: bits '4' is not supported"),
        (lambda d: d.update(overrides={"a": 1}), "overrides {'a': 1} is not a list"),
        (lambda d: d["overrides"].append(3), "overrides[2] 3 is not an object"),
        (lambda d: d["overrides"][1].update(bits=9), "'model.layers.3.self_attn.q_proj': bits 9"),
        (lambda d: d["overrides"][0].pop("type"), "overrides[0]: 'type' is missing"),
        (lambda d: d["mlx_quantization"].update(bits=8), "mlx_quantization disagrees with base and overrides"),
        (lambda d: d.update(notes=[1]), "notes [1] is not an object"),
    ],
)
def test_bad_file_content_is_refused_in_one_line(tmp_path, edit, message):
    data = _good()
    edit(data)
    path = tmp_path / "r.json"
    path.write_text(json.dumps(data))
    with pytest.raises(LayerscopeError) as info:
        read_recipe(path)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_views_may_be_left_out_of_a_hand_written_file(tmp_path):
    path = tmp_path / "r.json"
    path.write_text(json.dumps({"layerscope_recipe": 1, "base": {"bits": 4, "group_size": 32, "type": "Q8_0"}}))
    assert read_recipe(path) == Recipe(4, 32, "Q8_0")


def test_bad_files_are_refused_without_reading_them_whole(tmp_path):
    good = write_recipe(_recipe(), tmp_path / "good.json")
    link = tmp_path / "link.json"
    link.symlink_to(good)
    with pytest.raises(LayerscopeError, match="recipe file '.*link.json' is a symbolic link; give the file itself"):
        read_recipe(link)
    big = tmp_path / "big.json"
    with open(big, "wb") as handle:
        handle.truncate(MAX_RECIPE_BYTES + 1)  # sparse: refused by its size
    with pytest.raises(LayerscopeError, match=f"is {MAX_RECIPE_BYTES + 1} bytes; at most {MAX_RECIPE_BYTES}"):
        read_recipe(big)
    (tmp_path / "bad.json").write_text('{"layerscope_recipe": 1, "base": ')
    with pytest.raises(LayerscopeError, match="recipe file '.*bad.json' is not valid JSON"):
        read_recipe(tmp_path / "bad.json")
    (tmp_path / "list.json").write_text("[1, 2]")
    with pytest.raises(LayerscopeError, match="is not a recipe: a JSON object"):
        read_recipe(tmp_path / "list.json")
    with pytest.raises(LayerscopeError, match="does not exist"):
        read_recipe(tmp_path / "missing.json")
    if hasattr(os, "mkfifo"):
        os.mkfifo(tmp_path / "fifo.json")
        with pytest.raises(LayerscopeError, match="is a FIFO, socket or device"):
            read_recipe(tmp_path / "fifo.json")


def test_writing_replaces_a_link_instead_of_following_it(tmp_path):
    target = tmp_path / "elsewhere.txt"
    target.write_text("keep me")
    link = tmp_path / "r.json"
    link.symlink_to(target)
    write_recipe(_recipe(), link)
    assert target.read_text() == "keep me"
    assert not link.is_symlink()
    assert read_recipe(link) == _recipe()


def test_naming_tensors_for_every_architecture_leaves_gguf_s_shared_table_as_it_was():
    """gguf's TensorNameMap edits its class-wide block table for some architectures; a later Llama map (the one
    transformers' GGUF loading builds) must still name ``ffn_norm`` ``post_attention_layernorm``."""
    import gguf

    from layerscope.convert.recipe import gguf_name_or_none

    before = dict(gguf.TensorNameMap.block_mappings_cfg)
    for name in gguf.MODEL_ARCH_NAMES.values():
        gguf_name_or_none("model.layers.0.post_attention_layernorm", name, 2)
    assert gguf.TensorNameMap.block_mappings_cfg == before
    llama = gguf.get_tensor_name_map(gguf.MODEL_ARCH.LLAMA, 2)
    assert llama.get_name("model.layers.0.post_attention_layernorm.weight", try_suffixes=(".weight",)) == (
        "blk.0.ffn_norm.weight"
    )
