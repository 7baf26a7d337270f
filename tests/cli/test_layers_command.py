"""``layerscope layers`` on the command line: outputs, and one-line errors with exit code 2."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from layerscope.cli import main


def test_layers_command_writes_the_run(tiny_model_dirs, tmp_path, capsys):
    out = tmp_path / "run"
    argv = [
        "layers",
        "--model",
        str(tiny_model_dirs["llama"]),
        "--set",
        "colors",
        "--set",
        "months",
        "--basis",
        "embedding",
        "--layers",
        "embed,0,-1",
        "--context",
        "The word is {word}",
        "--out",
        str(out),
    ]
    code = main(["--quiet", *argv])
    assert code == 0
    assert capsys.readouterr().out.strip() == str(out / "index.html")
    projection = pd.read_csv(out / "projection.csv", dtype={"layer": str})
    assert list(dict.fromkeys(projection["layer"])) == ["embed", "0", "2"]
    assert list(dict.fromkeys(projection["depth"])) == [0, 1, 3]
    assert set(projection["set"]) == {"colors", "months"}
    metrics = pd.read_csv(out / "metrics.csv")
    assert list(metrics.columns) == [
        "model",
        "layer",
        "depth",
        "relative_depth",
        "silhouette",
        "between_within",
        "residual_norm",
        "top2_variance",
    ]
    assert list(metrics["relative_depth"]) == [0, 1 / 3, 1]  # depth / 3 blocks
    assert sorted(p.name for p in (out / "layers").iterdir()) == ["layer-00.png", "layer-02.png", "layer-embed.png"]
    run = json.loads((out / "run.json").read_text())
    assert run["command"] == ["layerscope", *argv]  # the flags in the config's field order
    assert run["timings_s"]["load"] > 0


def test_summary_lines_name_the_best_layer(tiny_model_dirs, tmp_path, capsys):
    code = main(
        [
            "layers",
            "--model",
            str(tiny_model_dirs["qwen3"]),
            "--model",
            str(tiny_model_dirs["qwen3"]),
            "--set",
            "colors",
            "--set",
            "months",
            "--layers",
            "embed,0",
            "--out",
            str(tmp_path),
        ]
    )
    assert code == 0
    captured = capsys.readouterr()
    text = captured.out + captured.err  # key numbers go to the console (stderr), the main file to stdout
    assert "qwen3: 2 layers, best separated at" in text and "qwen3 (2): 2 layers" in text


@pytest.mark.parametrize(
    "args, words",
    [
        (["--layers", "0,x"], "--layers 0,x has 'x'"),
        (["--layers", "0,,1"], "empty item"),
        (["--layers", "7"], "out of range"),
        (["--basis", "middle"], "--basis middle is not valid"),
        (["--basis", "9"], "out of range"),
        (["--context", "The word is"], "{word}"),
        (["--dims", "4"], "--dims 4 is not supported"),
        (["--batch-size", "0"], "--batch-size 0 must be at least 1"),
        (["--memory-budget", "12XB"], "--memory-budget 12XB is not a size"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tiny_model_dirs, tmp_path, capsys, args, words):
    code = main(
        [
            "--quiet",
            "layers",
            "--model",
            str(tiny_model_dirs["qwen3"]),
            "--set",
            "colors",
            *args,
            "--out",
            str(tmp_path),
        ]
    )
    err = capsys.readouterr().err
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and words in err, err
    assert not (tmp_path / "projection.csv").exists()
