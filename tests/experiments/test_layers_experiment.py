"""The layers experiment: projections, metrics, the disk path, several models, the files it writes."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import layerscope
from layerscope.analysis import fit_pca, silhouette
from layerscope.experiments.layers import LayersConfig, run_layers
from layerscope.tokensets import CATEGORIES


@pytest.fixture(scope="module")
def llama_run(tiny_models):
    return run_layers(LayersConfig(basis="embedding"), [tiny_models["llama"]])


def test_projection_and_metrics_follow_the_captured_arrays(llama_run, tiny_models):
    model = tiny_models["llama"]
    n_words = sum(len(words) for words in CATEGORIES.values())
    result = llama_run
    assert list(result.projection.columns) == ["layer", "model", "set", "label", "pc1", "pc2"]
    assert len(result.projection) == (model.n_layers + 1) * n_words
    array = result.arrays["llama"]
    assert array.shape == (model.n_layers + 1, n_words, model.d_model)
    basis = fit_pca(array[0], 2)  # every layer on the embedding layer's basis
    labels = list(result.projection.loc[result.projection["layer"] == "0", "set"])
    for layer in range(model.n_layers + 1):
        rows = result.projection[result.projection["layer"] == str(layer)]
        np.testing.assert_allclose(rows[["pc1", "pc2"]].to_numpy(), basis.transform(array[layer]), atol=1e-9)
        metric = result.metrics[result.metrics["layer"] == str(layer)].iloc[0]
        assert metric["silhouette"] == pytest.approx(silhouette(array[layer], labels))
        assert metric["residual_norm"] == pytest.approx(np.linalg.norm(array[layer].astype(float), axis=1).mean())


def test_disk_path_gives_the_same_numbers(llama_run, tiny_models):
    on_disk = run_layers(LayersConfig(basis="embedding", memory_budget=1), [tiny_models["llama"]])
    assert isinstance(on_disk.arrays["llama"], np.memmap)
    assert not isinstance(llama_run.arrays["llama"], np.memmap)
    np.testing.assert_array_equal(on_disk.arrays["llama"], llama_run.arrays["llama"])
    pd.testing.assert_frame_equal(on_disk.projection, llama_run.projection)
    pd.testing.assert_frame_equal(on_disk.metrics, llama_run.metrics)


def test_basis_on_a_layer_not_shown_and_own_basis(tiny_models):
    model = tiny_models["qwen3"]
    fixed = layerscope.layers("colors", model=model, layers="2,3", basis=-1)
    assert sorted(set(fixed.projection["layer"])) == ["2", "3"]
    own = layerscope.layers("colors", model=model, layers="2,3", basis="layer")
    rows = own.projection[own.projection["layer"] == "2"]
    np.testing.assert_allclose(rows[["pc1", "pc2"]].to_numpy(), fit_pca(own.arrays["qwen3"][0], 2).transform(own.arrays["qwen3"][0]))
    last = fixed.projection[fixed.projection["layer"] == "3"]  # basis -1 is layer 3, the last shown
    top = own.arrays["qwen3"][1]
    np.testing.assert_allclose(last[["pc1", "pc2"]].to_numpy(), fit_pca(top, 2).transform(top), atol=1e-9)
    np.testing.assert_allclose(fixed.arrays["qwen3"], own.arrays["qwen3"])


def test_several_models_side_by_side_write_every_file(tiny_models, tmp_path):
    models = [tiny_models["gemma3"], tiny_models["olmo3"]]
    result = layerscope.layers(["months", "colors"], model=models, basis="embedding", out=tmp_path)
    assert list(dict.fromkeys(result.projection["model"])) == ["gemma3", "olmo3"]
    names = {p.name for p in tmp_path.iterdir()}
    assert {"projection.csv", "metrics.csv", "index.html", "grid.png", "metrics.png", "run.json", "layers"} <= names
    assert len(list((tmp_path / "layers").glob("layer-*.png"))) == 4
    fig = result.figure()
    assert len(fig.frames) == 4 and len(fig.data) == 4  # 2 models x 2 sets, one frame per layer
    assert fig.layout.xaxis.range is not None and fig.layout.xaxis2.range is not None  # fixed axes
    html = (tmp_path / "index.html").read_text()
    assert "sliders" in html and "frames" in html
    run = json.loads((tmp_path / "run.json").read_text())
    assert [m["name"] for m in run["models"]] == ["gemma3", "olmo3"] and run["config"]["basis"] == "embedding"
    saved = pd.read_csv(tmp_path / "projection.csv")
    assert len(saved) == len(result.projection)
