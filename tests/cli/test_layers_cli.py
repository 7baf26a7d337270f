"""``layerscope layers`` on the command line: outputs, and one-line errors with exit code 2."""

from __future__ import annotations

import pandas as pd
import pytest

from layerscope.cli import main


def test_layers_command_writes_the_run(tiny_model_dirs, tmp_path, capsys):
    out = tmp_path / "run"
    code = main(["--quiet", "layers", "--model", str(tiny_model_dirs["llama"]), "--set", "colors", "--set", "months",
                 "--layers", "0,1,-1", "--basis", "embedding", "--context", "The word is {word}", "--out", str(out)])
    assert code == 0
    assert capsys.readouterr().out.strip() == str(out / "index.html")
    projection = pd.read_csv(out / "projection.csv")
    assert sorted(set(projection["layer"])) == [0, 1, 3]
    assert set(projection["set"]) == {"colors", "months"}
    metrics = pd.read_csv(out / "metrics.csv")
    assert list(metrics.columns) == ["model", "layer", "silhouette", "between_within", "residual_norm", "top2_variance"]
    assert sorted(p.name for p in (out / "layers").iterdir()) == ["layer-00.png", "layer-01.png", "layer-03.png"]


@pytest.mark.parametrize(
    "args, words",
    [
        (["--layers", "0,x"], "'x'"),
        (["--layers", "0,,1"], "empty item"),
        (["--layers", "7"], "out of range"),
        (["--basis", "middle"], "'middle'"),
        (["--basis", "9"], "out of range"),
        (["--context", "The word is"], "{word}"),
        (["--dims", "4"], "--dims 4"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tiny_model_dirs, tmp_path, capsys, args, words):
    code = main(["--quiet", "layers", "--model", str(tiny_model_dirs["qwen3"]), "--set", "colors", *args, "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and words in err
    assert not (tmp_path / "projection.csv").exists()
