"""``layerscope.residuals`` (the capture experiment): the files it writes, its config and its errors."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import layerscope
from layerscope.experiment import ConfigError
from layerscope.experiments.capture import CaptureConfig


def test_residuals_result_saves_its_files(tiny_models, tmp_path):
    model = tiny_models["gpt_oss"]
    result = layerscope.residuals(["red blue", "John"], model=model, positions="all", layers="embed,-1", out=tmp_path)
    expected = {"residuals.npy", "items.csv", "norms.csv", "index.html", "index.plotly.json", "index.png", "run.json"}
    assert {p.name for p in tmp_path.iterdir()} == expected
    np.testing.assert_array_equal(np.load(tmp_path / "residuals.npy"), result.residuals)
    items = pd.read_csv(tmp_path / "items.csv")
    assert len(items) == result.residuals.shape[1] == len(model.encode("red blue")) + len(model.encode("John"))
    last = str(model.n_layers - 1)
    run = json.loads((tmp_path / "run.json").read_text())
    assert run["experiment"] == "capture" and run["layers"] == ["embed", last]
    assert run["models"][0]["fingerprint"] == model.fingerprint
    norms = pd.read_csv(tmp_path / "norms.csv", dtype={"layer": str})
    assert list(norms.columns) == ["model", "layer", "depth", "residual_norm"]
    assert list(norms["layer"]) == ["embed", last] and list(norms["depth"]) == [0, model.n_layers]
    # norms grow by orders of magnitude: a log axis in both views, so a small model does not sit flat at 0
    assert result.figure().layout.yaxis.type == "log"
    assert result.images()["index"]().axes[0].get_yscale() == "log"


@pytest.mark.parametrize(
    "kwargs, words",
    [
        ({"prompts": ["red"], "sets": "colors"}, "either prompts or sets"),
        ({}, "either prompts or sets"),
        ({"prompts": ["red"], "layers": "0,x"}, "layers='0,x' has 'x'"),
        ({"prompts": ["red"], "positions": "middle"}, "positions='middle' is not valid"),
        ({"prompts": ["red", "blue"], "positions": [[0]]}, "gives 1 groups for 2 prompts"),
        ({"sets": "colors", "context": "no field"}, "context='no field' is not 'bos'"),
        ({"prompts": ["red"], "batch_size": 0}, "batch_size=0 must be at least 1"),
        ({"prompts": ["red"], "memory_budget": "lots"}, "memory_budget='lots' is not a size"),
        (
            {"prompts": ["red"], "multi_token": "max"},
            "multi_token='max' is not supported; valid: 'mean', 'first', 'last'",
        ),
        ({"sets": {"empty": []}}, "has no words"),
    ],
)
def test_bad_values_name_the_parameter_before_loading(kwargs, words):
    with pytest.raises(ConfigError) as caught:
        layerscope.residuals(model="/no/such/model", **kwargs)
    assert words in str(caught.value) and "--" not in str(caught.value)


def test_capture_config_record_and_command():
    config = CaptureConfig(prompts=("The capital of France is",), layers="embed,6,-1", batch_size=8)
    config.validate()
    assert config.command() == [
        "layerscope",
        "capture",
        "--prompt",
        "The capital of France is",
        "--layers",
        "embed,6,-1",
        "--batch-size",
        "8",
    ]
    assert json.loads(json.dumps(config.to_record(), default=str))["layers"] == "embed,6,-1"
