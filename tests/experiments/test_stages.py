"""``layerscope stages`` and ``layerscope.stages``: the run directory, the config protocol, bad values."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import layerscope
from layerscope import ModelSpec
from layerscope.cli import main
from layerscope.cli.declared import parse
from layerscope.experiment import ConfigError
from layerscope.experiments.stages import StagesConfig

TEXTS = ["The cat sat on the mat.", "Stocks fell sharply today, said the report.", "hi", "7+8=15", "red and blue"]
STAGES = ["embed", "0", "1", "2", "pooling", "dense.0", "dense.1", "normalize"]


def test_stages_cli_writes_run_directory(tiny_embeddinggemma, tmp_path, capsys):
    out = tmp_path / "run"
    model_dir = tiny_embeddinggemma.source
    assert main(["--quiet", "stages", "--model", model_dir, *TEXTS, "--out", str(out), "--dims", "3"]) == 0
    assert capsys.readouterr().out.strip() == str(out / "index.html")
    with np.load(out / "stages.npz") as data:
        assert sorted(data.files) == sorted(STAGES)
        np.testing.assert_allclose(data["normalize"], tiny_embeddinggemma.encode(TEXTS), atol=1e-5)
    run = json.loads((out / "run.json").read_text())
    assert run["experiment"] == "stages" and run["stages"] == STAGES
    assert run["models"][0]["fingerprint"] == tiny_embeddinggemma.fingerprint
    assert run["command"] == ["layerscope", "stages", "--model", model_dir, "--dims", "3", *TEXTS, "--out", str(out)]
    page = (out / "index.html").read_text()
    assert all(f"<h2>{name}</h2>" in page for name in STAGES) and page.count("plotly.js v") <= 2
    table = pd.read_csv(out / "projection.csv", dtype={"stage": str})
    assert list(dict.fromkeys(table["stage"])) == STAGES and {"pc1", "pc2", "pc3"} <= set(table.columns)
    assert list(dict.fromkeys(table["depth"])) == list(range(len(STAGES)))
    assert main(["--quiet", "stages", "--model", model_dir, "a", "b", "--dims", "3", "--out", str(tmp_path / "x")]) == 2
    assert not (tmp_path / "x").exists()


def test_python_api_matches_the_embedder(tiny_embeddinggemma, tmp_path):
    result = layerscope.stages(TEXTS, tiny_embeddinggemma, prompt_name="query", out=tmp_path / "run")
    assert result.names == STAGES and result.timings["compute"] > 0 and "load" not in result.timings
    np.testing.assert_allclose(
        result.stages.vectors["normalize"], tiny_embeddinggemma.encode(TEXTS, prompt_name="query"), atol=1e-5
    )
    assert result.figure("0").layout.title.text.endswith(": 0") and len(result.stage_figures()) == len(STAGES)
    assert f"{len(TEXTS)} texts through {len(STAGES)} stages" in repr(result)
    assert result.config.model == ModelSpec(source=tiny_embeddinggemma.source)
    assert (tmp_path / "run" / "index.html").is_file()
    assert (tmp_path / "run" / "index.png").is_file()  # the report's stages section has a figure


def _reparsed(config: StagesConfig) -> StagesConfig:
    return parse(config.command())


@pytest.mark.parametrize(
    "config",
    [
        StagesConfig(texts=("a", "b")),
        StagesConfig(texts=("a cat", "b", "c"), model=ModelSpec(source="some/dir", trust_remote_code=True), dims=3),
        StagesConfig(texts=("a",), file="texts.txt", prompt_name="query", batch_size=4),
    ],
)
def test_command_reparses_to_the_same_config(config):
    assert _reparsed(config) == config


def test_bad_values_name_the_parameter_or_the_flag(tmp_path):
    for config, param, flag in [
        (StagesConfig(texts=("a", "b"), dims=4), "dims=4", "--dims 4"),
        (StagesConfig(texts=("a", "b"), batch_size=0), "batch_size=0", "--batch-size 0"),
        (StagesConfig(texts=("a",), dims=2), "dims=2", "--dims 2"),
        (StagesConfig(file=str(tmp_path / "missing.txt")), "file=", "--file "),
    ]:
        with pytest.raises(ConfigError) as caught:
            config.validate()
        assert str(caught.value).startswith(param) and caught.value.cli_message().startswith(flag)
