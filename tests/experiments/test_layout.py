"""The layout experiment on the protocol: config, command line, run directory, page, Python API."""

from __future__ import annotations

import json

import numpy as np
import pytest
from safetensors.numpy import save_file

import layerscope
from layerscope.cli import main
from layerscope.cli.declared import parse
from layerscope.experiment import ConfigError
from layerscope.experiments.layout import LayoutConfig, LayoutResult


@pytest.fixture
def checkpoint(tmp_path):
    tensors = {"model.embed_tokens.weight": np.zeros((10, 4), np.float16), "model.norm.weight": np.zeros(4, np.float32)}
    for i in range(3):
        tensors[f"model.layers.{i}.mlp.up_proj.weight"] = np.zeros((8, 4), np.float16)
    path = tmp_path / "ckpt" / "model.safetensors"
    path.parent.mkdir()
    save_file(tensors, str(path))
    return path


def _reparsed(config: LayoutConfig) -> LayoutConfig:
    argv = config.command()
    assert argv[:2] == ["layerscope", "layout"]
    return parse(argv)


@pytest.mark.parametrize(
    "fields",
    [
        {},
        {"fold": False},
        {"json": True},
        {"html": "page with space.html"},
        {"fold": False, "json": True, "html": "p.html"},
        {"batch": 4, "seq_len": 512},
    ],
)
def test_command_reparsed_by_the_cli_gives_the_same_config(fields):
    config = LayoutConfig(source="dir/model.safetensors", **fields)
    assert _reparsed(config) == config


def test_no_model_is_loaded():
    assert LayoutConfig(source="default").model_specs() == ()


def test_bad_values_name_the_parameter_in_python_and_the_flag_on_the_command_line(tmp_path, capsys):
    with pytest.raises(ConfigError, match=r"^html='' is empty"):
        layerscope.layout(tmp_path, html="")
    with pytest.raises(ConfigError, match=r"^html=.* is a directory"):
        LayoutConfig(source="x", html=str(tmp_path)).validate()
    with pytest.raises(ConfigError, match=r"^source='' is empty"):
        LayoutConfig(source="").validate()
    assert main(["layout", "x", "--html", str(tmp_path)]) == 2
    assert (
        capsys.readouterr().err.strip()
        == f"layerscope: error: --html {tmp_path} is a directory; give a file name for the page"
    )


def test_python_api_returns_the_result_and_writes_the_run_directory(checkpoint, tmp_path):
    page = tmp_path / "page.html"
    result = layerscope.layout(checkpoint, out=tmp_path / "run", html=page)
    assert isinstance(result, LayoutResult)
    assert layerscope.experiments.layout.layout(checkpoint).text() == result.text()
    assert "model.layers.1-2: same as model.layers.0" in result.text()
    assert "model.layers.1.mlp(1)" in layerscope.layout(checkpoint, fold=False).text()
    assert "layout of" in repr(result) and "parameters in" in repr(result)
    run = tmp_path / "run"
    assert sorted(p.name for p in run.iterdir()) == [
        "layout.html",
        "layout.json",
        "layout.txt",
        "run.json",
        "treemap.html",
        "treemap.plotly.json",
        "treemap.png",
    ]
    record = json.loads((run / "run.json").read_text())
    assert record["experiment"] == "layout" and record["models"] == []
    assert record["parameters"] == 10 * 4 + 4 + 3 * 8 * 4 and record["tensors"] == 5
    assert record["command"] == ["layerscope", "layout", "--html", str(page), str(checkpoint), "--out", str(run)]
    assert json.loads((run / "layout.json").read_text()) == result.to_dict()
    assert page.read_text() == (run / "layout.html").read_text() == result.html()
    assert not list(tmp_path.glob(".*.part"))


def test_the_treemap_keeps_block_order_in_both_views(tmp_path):
    """Blocks 0, 1, 2, ..., 10, 11 in that order (not by size, not as text: 10 before 2), HTML and PNG alike."""
    tensors = {f"model.layers.{i}.mlp.up_proj.weight": np.zeros((2 + (i % 3), 4), np.float16) for i in range(12)}
    tensors["model.embed_tokens.weight"] = np.zeros((10, 4), np.float16)
    path = tmp_path / "model.safetensors"
    save_file(tensors, str(path))
    treemap = layerscope.layout(path).treemap()
    blocks = [f"model.layers.{i}" for i in range(12)]

    def block(name: str) -> bool:
        return name.startswith("model.layers.") and name.count(".") == 2

    assert [i for i in treemap.ids if block(i)] == blocks
    interactive = treemap.plotly().data[0]
    assert interactive.sort is False
    assert [i for i in interactive.ids if block(i)] == blocks
    drawn = [treemap.ids[i] for i, *_ in treemap.boxes() if block(treemap.ids[i])]
    tops = [y for i, _, y, *_ in treemap.boxes() if block(treemap.ids[i])]
    assert drawn == blocks and tops == sorted(tops)
    assert treemap.png().axes[0].patches


def test_json_goes_to_stdout_alone(checkpoint, tmp_path, capsys):
    assert (
        main(["layout", str(checkpoint), "--json", "--out", str(tmp_path / "run"), "--html", str(tmp_path / "p.html")])
        == 0
    )
    data = json.loads(capsys.readouterr().out)
    assert (
        data["totals"]["tensors"] == 5 and (tmp_path / "run" / "run.json").is_file() and (tmp_path / "p.html").is_file()
    )


def test_without_out_nothing_but_the_page_is_written(checkpoint, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["layout", str(checkpoint)]) == 0
    assert "model.norm.weight [4] F32" in capsys.readouterr().out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt"]


def test_hostile_tensor_names_are_escaped_on_the_page(tmp_path):
    name = "a.<script>alert(1)</script>"
    save_file({name: np.zeros(2, np.float32), "b.\"x'": np.zeros(1, np.float32)}, str(tmp_path / "m.safetensors"))
    page = layerscope.layout(tmp_path / "m.safetensors").html()
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "b.&quot;x&#x27;" in page


def test_the_memory_a_forward_needs_per_dtype(tiny_model_dirs, capsys, tmp_path):
    from layerscope.checkpoints.layout import forward_memory

    source = str(tiny_model_dirs["llama"])
    assert main(["layout", source, "--batch", "2", "--seq-len", "64"]) == 0
    text = capsys.readouterr().out
    assert "forward memory (batch 2 x 64 tokens, every layer captured):" in text
    assert all(f"  {dtype}:" in text for dtype in ("float32", "bfloat16", "float16"))
    assert main(["layout", source, "--json", "--batch", "2", "--seq-len", "64", "--out", str(tmp_path / "r")]) == 0
    memory = json.loads(capsys.readouterr().out)["forward_memory"]
    for dtype in ("float32", "bfloat16", "float16"):
        assert memory[dtype]["total"] == forward_memory(source, dtype, batch=2, seq_len=64)
        assert memory[dtype]["batch"] == 2 and memory[dtype]["seq_len"] == 64
    assert memory["float32"]["weights"] == 2 * memory["bfloat16"]["weights"]
    record = json.loads((tmp_path / "r" / "run.json").read_text())
    assert record["forward_memory"]["float16"] == memory["float16"]["total"]
    assert (
        "--seq-len" in record["command"]
        and "A forward of 2 x 64 tokens" in (tmp_path / "r" / "layout.html").read_text()
    )


def test_the_treemap_counts_its_tensors_and_its_boxes_apart(checkpoint):
    """A treemap's boxes are the name prefixes (to 4 parts), not the tensors: its title counts each (the totals count
    tensors alone), so "5 tensors" never stands unexplained beside a treemap of 12 boxes."""
    result = layerscope.layout(checkpoint)
    treemap = result.treemap()
    prefixes = {".".join(t.name.split(".")[:n]) for t in result.layout.tensors for n in range(1, 5)}
    assert result.totals()["tensors"] == 5 and len(treemap.ids) == len(prefixes) == 12
    assert "5 tensors, 12 boxes (a box per name prefix, to 4 parts)" in treemap.title
