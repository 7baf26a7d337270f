"""Layer specs, memory budgets, prompt positions: parsing and one-line errors."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import layerscope
from layerscope.capture import FINAL_NORM, CapturePrompt, parse_budget, parse_layers, prompts_at
from layerscope.errors import LayerscopeError


def test_parse_layers():
    assert parse_layers("all", 3) == [0, 1, 2, 3]
    assert parse_layers(None, 2) == [0, 1, 2]
    assert parse_layers("0,1,-1", 18) == [0, 1, 18]
    assert parse_layers("-19, 6 ,6", 18) == [0, 6]
    assert parse_layers([2, "norm", "embedding"], 3) == [2, FINAL_NORM, 0]
    assert parse_layers(-1, 3) == [3]


@pytest.mark.parametrize("spec, words", [("19", "out of range"), ("-20", "out of range"), ("a", "'a'"), ("1,", "empty"), ([], "no layer")])
def test_bad_layers(spec, words):
    with pytest.raises(LayerscopeError, match=words):
        parse_layers(spec, 18)


def test_parse_budget():
    assert parse_budget("512MB") == 512 * 10**6
    assert parse_budget("2GiB") == 2 << 30
    assert parse_budget(1000) == 1000 and parse_budget("1e3") == 1000
    for bad in ("lots", "-1"):
        with pytest.raises(LayerscopeError, match="budget"):
            parse_budget(bad)


def test_prompt_positions():
    assert prompts_at([[5, 6, 7]], "all")[0].groups == ((0,), (1,), (2,))
    assert prompts_at([[5, 6, 7]], [[-1, 0]])[0].groups == ((2, 0),)
    with pytest.raises(LayerscopeError, match="outside"):
        prompts_at([[5, 6]], [[2]])
    with pytest.raises(LayerscopeError, match="positions"):
        prompts_at([[5, 6]], "middle")
    with pytest.raises(LayerscopeError, match="empty prompt"):
        CapturePrompt((), ((0,),))


def test_capture_result_saves_its_files(tiny_models, tmp_path):
    model = tiny_models["gpt_oss"]
    result = layerscope.capture(["red blue", "John"], model=model, positions="all", layers="0,-1", out=tmp_path)
    expected = {"residuals.npy", "items.csv", "norms.csv", "index.html", "index.plotly.json", "run.json"}
    assert {p.name for p in tmp_path.iterdir()} == expected
    np.testing.assert_array_equal(np.load(tmp_path / "residuals.npy"), result.residuals)
    items = pd.read_csv(tmp_path / "items.csv")
    assert len(items) == result.residuals.shape[1] == len(model.encode("red blue")) + len(model.encode("John"))
    assert json.loads((tmp_path / "run.json").read_text())["layers"] == ["0", str(model.n_layers)]
    with pytest.raises(LayerscopeError, match="either prompts or sets"):
        layerscope.capture(["red"], sets="colors", model=model)
