"""The layers experiment: projections, metrics, the disk path, several models, the files it writes, the config."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import layerscope
from layerscope.analysis import fit_pca, silhouette
from layerscope.cli.declared import parse
from layerscope.experiment import ConfigError
from layerscope.experiments.layers import LayersConfig, LayersResult, run_layers
from layerscope.model_spec import ModelSpec
from layerscope.runner import execute
from layerscope.tokensets import CATEGORIES


@pytest.fixture(scope="module")
def llama_run(tiny_models):
    return run_layers(LayersConfig(basis="embedding"), [tiny_models["llama"]])


def test_projection_and_metrics_follow_the_captured_arrays(llama_run, tiny_models):
    model = tiny_models["llama"]
    n_words = sum(len(words) for words in CATEGORIES.values())
    result = llama_run
    assert list(result.projection.columns) == ["model", "layer", "depth", "set", "label", "pc1", "pc2"]
    assert len(result.projection) == (model.n_layers + 1) * n_words
    names = ["embed", *map(str, range(model.n_layers))]
    assert list(dict.fromkeys(result.projection["layer"])) == names
    assert list(result.metrics["layer"]) == names and list(result.metrics["depth"]) == list(range(model.n_layers + 1))
    array = result.residuals["llama"]
    assert array.shape == (model.n_layers + 1, n_words, model.d_model)
    basis = fit_pca(array[0], 2)  # every layer on the embedding output's basis
    labels = list(result.projection.loc[result.projection["layer"] == "embed", "set"])
    for depth, name in enumerate(names):
        rows = result.projection[result.projection["layer"] == name]
        assert set(rows["depth"]) == {depth}
        np.testing.assert_allclose(rows[["pc1", "pc2"]].to_numpy(), basis.transform(array[depth]), atol=1e-9)
        metric = result.metrics[result.metrics["layer"] == name].iloc[0]
        assert metric["silhouette"] == pytest.approx(silhouette(array[depth], labels))
        assert metric["residual_norm"] == pytest.approx(np.linalg.norm(array[depth].astype(float), axis=1).mean())
    assert result.titles["embed"] == "embed" and result.titles["1"] == "block 1"


def test_disk_path_gives_the_same_numbers(llama_run, tiny_models):
    on_disk = run_layers(LayersConfig(basis="embedding", memory_budget=1), [tiny_models["llama"]])
    assert isinstance(on_disk.residuals["llama"], np.memmap)
    assert not isinstance(llama_run.residuals["llama"], np.memmap)
    np.testing.assert_array_equal(on_disk.residuals["llama"], llama_run.residuals["llama"])
    pd.testing.assert_frame_equal(on_disk.projection, llama_run.projection)
    pd.testing.assert_frame_equal(on_disk.metrics, llama_run.metrics)


def test_basis_on_a_layer_not_shown_and_own_basis(tiny_models):
    model = tiny_models["qwen3"]  # 3 blocks: 0, 1, 2
    fixed = layerscope.layers("colors", model=model, layers="1,2", basis=-1)
    assert sorted(set(fixed.projection["layer"])) == ["1", "2"]
    assert sorted(set(fixed.projection["depth"])) == [2, 3]
    own = layerscope.layers("colors", model=model, layers=[1, 2], basis="layer")
    rows = own.projection[own.projection["layer"] == "1"]
    first = own.residuals["qwen3"][0]
    np.testing.assert_allclose(rows[["pc1", "pc2"]].to_numpy(), fit_pca(first, 2).transform(first))
    last = fixed.projection[fixed.projection["layer"] == "2"]  # basis -1 is block 2, the last shown
    top = own.residuals["qwen3"][1]
    np.testing.assert_allclose(last[["pc1", "pc2"]].to_numpy(), fit_pca(top, 2).transform(top), atol=1e-9)
    np.testing.assert_allclose(fixed.residuals["qwen3"], own.residuals["qwen3"])
    by_name = layerscope.layers("colors", model=model, layers="embed,1", basis="embed")
    assert list(dict.fromkeys(by_name.projection["layer"])) == ["embed", "1"]
    np.testing.assert_allclose(by_name.residuals["qwen3"][1], own.residuals["qwen3"][0])


def test_several_models_side_by_side_write_every_file(tiny_models, tmp_path):
    models = [tiny_models["gemma3"], tiny_models["olmo3"]]
    result = layerscope.layers(["months", "colors"], model=models, basis="embedding", out=tmp_path)
    assert isinstance(result, LayersResult)
    assert list(dict.fromkeys(result.projection["model"])) == ["gemma3", "olmo3"]
    names = {p.name for p in tmp_path.iterdir()}
    assert {"projection.csv", "metrics.csv", "index.html", "grid.png", "metrics.png", "run.json", "layers"} <= names
    n_layers = tiny_models["gemma3"].n_layers
    expected = ["layer-embed.png", *(f"layer-{k:02d}.png" for k in range(n_layers))]
    assert sorted(p.name for p in (tmp_path / "layers").iterdir()) == sorted(expected)
    fig = result.figure()
    assert len(fig.frames) == n_layers + 1 and len(fig.data) == 4  # 2 models x 2 sets, one frame per layer
    assert [step.label for step in fig.layout.sliders[0].steps] == ["embed", *(f"block {k}" for k in range(n_layers))]
    assert fig.layout.xaxis.range is not None and fig.layout.xaxis2.range is not None  # fixed axes
    html = (tmp_path / "index.html").read_text()
    assert "sliders" in html and "frames" in html
    run = json.loads((tmp_path / "run.json").read_text())
    assert [m["name"] for m in run["models"]] == ["gemma3", "olmo3"] and run["config"]["basis"] == "embedding"
    assert run["models"][0]["layers"] == ["embed", *map(str, range(n_layers))]
    assert run["experiment"] == "layers" and "load" not in run["timings_s"]  # the models were given loaded
    saved = pd.read_csv(tmp_path / "projection.csv", dtype={"layer": str})
    assert len(saved) == len(result.projection) and saved["layer"].iloc[0] == "embed"
    assert list(pd.read_csv(tmp_path / "metrics.csv").columns) == [
        "model",
        "layer",
        "depth",
        "relative_depth",
        "silhouette",
        "between_within",
        "residual_norm",
        "top2_variance",
    ]


def test_the_same_model_twice_gets_unique_names(tiny_models):
    model = tiny_models["llama"]
    result = layerscope.layers(tokens="red,green,blue,cat,dog", model=[model, model], layers="embed,-1")
    assert list(result.residuals) == ["llama", "llama (2)"]
    assert list(dict.fromkeys(result.metrics["model"])) == ["llama", "llama (2)"]
    assert set(result.projection["set"]) == {"tokens"}


def test_models_load_one_at_a_time_from_their_specs(tiny_model_dirs, monkeypatch):
    """Each spec is loaded inside run (timed), and the previous model is freed before the next loads."""
    import gc
    import weakref

    import layerscope.models.loading as loading

    loaded: list = []
    original = loading.load_spec

    def load(spec):
        assert all(ref() is None for ref in loaded), "the previous model is still alive"
        model = original(spec)
        loaded.append(weakref.ref(model))
        return model

    monkeypatch.setattr(loading, "load_spec", load)
    specs = (ModelSpec(source=str(tiny_model_dirs["llama"])), ModelSpec(source=str(tiny_model_dirs["qwen3"])))
    result = execute(LayersConfig(models=specs, tokens=("red", "blue", "cat"), layers="embed,0"))
    gc.collect()
    assert len(loaded) == 2 and result.timings["load"] > 0
    assert [m["source"] for m in result.models] == [s.source for s in specs]


# ----- the config ---------------------------------------------------------------------------------


def test_the_default_config_has_a_bare_command():
    """(Every field's way through the command line: tests/cli/test_declared.py.)"""
    assert LayersConfig().command() == ["layerscope", "layers"]
    assert parse(["layerscope", "layers"]) == LayersConfig()


@pytest.mark.parametrize(
    "field, value, words",
    [
        ("dims", 4, "dims=4 is not supported"),
        ("basis", "middle", "basis='middle' is not valid"),
        ("basis", "1,2", "basis='1,2' is one layer"),
        ("layers", "0,x", "layers='0,x' has 'x'"),
        ("layers", "0,,1", "layers='0,,1' has an empty item"),
        ("context", "The word is", "context='The word is' is not 'bos'"),
        ("batch_size", 0, "batch_size=0 must be at least 1"),
        ("memory_budget", "12XB", "memory_budget='12XB' is not a size"),
        ("multi_token", "median", "multi_token='median' is not supported; valid: 'mean', 'first', 'last'"),
    ],
)
def test_bad_values_from_python_name_the_parameter(field, value, words):
    with pytest.raises(ConfigError) as caught:
        LayersConfig(**{field: value}).validate()
    assert words in str(caught.value)
    assert "--" not in str(caught.value)


def test_an_unknown_set_is_refused_before_loading():
    with pytest.raises(layerscope.LayerscopeError, match="no-such-set"):
        LayersConfig(sets=("no-such-set",)).validate()


def test_bad_value_from_python_api_names_the_parameter_before_loading():
    with pytest.raises(ConfigError, match=r"dims=4 is not supported"):
        layerscope.layers("colors", model="/no/such/model", dims=4)


def test_out_of_range_layers_are_refused_with_the_model(tiny_models):
    with pytest.raises(layerscope.LayerscopeError, match="out of range"):
        layerscope.layers("colors", model=tiny_models["llama"], layers="7")
    with pytest.raises(layerscope.LayerscopeError, match="basis '9'.*out of range"):
        layerscope.layers("colors", model=tiny_models["llama"], basis=9)


@pytest.mark.default_model
def test_layers_vectors_equal_hf_hidden_states_on_the_default_model(default_model):
    """Seed 002 on Gemma 3 270M: ``embed`` is HF's ``hidden_states[0]``, block ``k`` its ``hidden_states[k + 1]``."""
    import torch

    model = default_model
    result = layerscope.layers("colors", model=model, layers="embed,5,16", basis="embed")
    assert list(dict.fromkeys(result.projection["layer"])) == ["embed", "5", "16"]
    assert list(dict.fromkeys(result.projection["depth"])) == [0, 6, 17]
    array = result.residuals[model.name]
    words = result.projection[result.projection["layer"] == "embed"]["label"]
    for item, word in enumerate(words):
        ids = [model.bos_token_id, *model.encode(word, bos=False)]
        with torch.no_grad():
            states = model.module(input_ids=torch.tensor([ids]), output_hidden_states=True).hidden_states
        for slot, depth in enumerate([0, 6, 17]):
            want = states[depth][0, 1:].mean(0).numpy()
            scale = max(1.0, float(np.abs(want).max()))
            np.testing.assert_allclose(array[slot, item], want, atol=1e-5 * scale, rtol=0)


def test_models_and_model_are_one_parameter_of_every_face(tiny_models):
    """``layers(models=...)`` (the spelling echo, compare and sweep use) and ``layers(model=...)`` give one run;
    every multi-model face takes both; both at once is refused."""
    import inspect

    model = tiny_models["llama"]
    plural = layerscope.layers("colors", models=[model], layers="embed,1")
    singular = layerscope.layers("colors", model=model, layers="embed,1")
    assert plural.config == singular.config
    assert np.allclose(plural.metrics["silhouette"], singular.metrics["silhouette"], equal_nan=True)
    for face in (layerscope.layers, layerscope.echo, layerscope.compare, layerscope.sweep):
        assert {"models", "model"} <= set(inspect.signature(face).parameters), face.__name__
    with pytest.raises(layerscope.LayerscopeError, match="both models= and model="):
        layerscope.layers("colors", models=[model], model=model)
