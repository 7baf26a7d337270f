"""Models of different depths in ``layers``: relative depth in the tables, aligned grid, slider and curves.

Two tiny llama models, 3 and 5 blocks; every figure is built (and every PNG written) with warnings
turned into errors.
"""

from __future__ import annotations

import warnings
from fractions import Fraction

import numpy as np
import pandas as pd
import pytest
import torch
from tiny_models import build_config, build_tokenizer

import layerscope
from layerscope.experiments.layers import LayersConfig, LayersResult, run_layers
from layerscope.render.layer_grid import RELATIVE_AXIS, grid_figure, layer_figure, metrics_figure

SETS = ("colors", "months")


@pytest.fixture(scope="module")
def deeper_llama(tmp_path_factory):
    """A tiny llama like ``tiny_models["llama"]`` but with 5 blocks."""
    from transformers import AutoModelForCausalLM

    tokenizer = build_tokenizer()
    config = build_config("llama", len(tokenizer))
    config.num_hidden_layers = 5
    torch.manual_seed(1)
    module = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    directory = tmp_path_factory.mktemp("llama5")
    module.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    model = layerscope.load_model(str(directory))
    assert model.n_layers == 5
    return model


@pytest.fixture(scope="module")
def two_depths(tiny_models, deeper_llama):
    short = tiny_models["llama"]
    assert short.n_layers == 3
    return layerscope.layers(list(SETS), model=[short, deeper_llama])


@pytest.fixture(scope="module")
def names(two_depths):
    return list(dict.fromkeys(two_depths.metrics["model"]))  # short first, then the deeper one


def test_relative_depth_is_depth_over_the_blocks_of_each_model(two_depths, names):
    metrics = two_depths.metrics
    assert list(metrics.columns[:4]) == ["model", "layer", "depth", "relative_depth"]
    for name, blocks in zip(names, (3, 5)):
        rows = metrics[metrics["model"] == name]
        assert list(rows["layer"]) == ["embed", *map(str, range(blocks))]
        assert list(rows["relative_depth"]) == [float(Fraction(d, blocks)) for d in range(blocks + 1)]
    assert metrics.groupby("model")["relative_depth"].agg(["min", "max"]).values.tolist() == [[0.0, 1.0]] * 2


def test_grid_one_column_per_model_every_panel_drawn(two_depths, names):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fig = grid_figure(two_depths._placed(), two_depths.titles, title="t")
        fig.canvas.draw()
    axes = fig.axes
    assert len(axes) == 4 + 6  # each model's own layers, once each, no empty panel
    assert all(len(ax.collections) == len(SETS) for ax in axes)  # every panel has its points
    # 6 rows (the 5-block model's layers) wrap into 2 groups of 3 rows: columns short, deep, spacer, short, deep
    placed = {}
    for ax in axes:
        spec = ax.get_subplotspec()
        group, model = divmod(spec.colspan.start, 3)
        model_name, layer = ax.get_title().split("\n")
        assert model_name == names[model]
        placed[(names[model], 3 * group + spec.rowspan.start)] = layer
    deep = [f"{two_depths.titles[n]} ({d / 5:.2f})" for d, n in enumerate(["embed", *map(str, range(5))])]
    assert [placed[(names[1], r)] for r in range(6)] == deep
    # rows at 0, .2, .4, .6, .8, 1: the 3-block model's 0, 1/3, 2/3, 1 in the nearest rows, keeping the order
    short = {r: placed[(names[0], r)] for r in range(6) if (names[0], r) in placed}
    assert short == {0: "embed (0.00)", 2: "block 0 (0.33)", 3: "block 1 (0.67)", 5: "block 2 (1.00)"}
    assert all(not ax.get_subplotspec().colspan.start == 2 for ax in axes)  # the spacer stays empty


def test_metrics_curves_against_relative_depth(two_depths, names):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fig = metrics_figure(two_depths.metrics, title="t")
        fig.canvas.draw()
    for ax in fig.axes:
        assert ax.get_xlabel() == RELATIVE_AXIS
        lines = {line.get_label(): line for line in ax.get_lines()}
        assert list(lines) == names
        for name, blocks in zip(names, (3, 5)):
            np.testing.assert_allclose(lines[name].get_xdata(), [d / blocks for d in range(blocks + 1)])
            assert lines[name].get_xdata()[-1] == 1.0  # both end at the last block
    silhouette = fig.axes[0].get_lines()[1].get_ydata()
    np.testing.assert_allclose(silhouette, two_depths.metrics[two_depths.metrics["model"] == names[1]]["silhouette"])


def test_layer_figures_only_for_models_with_that_layer(two_depths, names):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        both = layer_figure(two_depths.projection, two_depths.ratios, "2", title="block 2")
        deep_only = layer_figure(two_depths.projection, two_depths.ratios, "4", title="block 4")
        both.canvas.draw()
        deep_only.canvas.draw()
    assert [ax.get_title() for ax in both.axes] == names
    assert [ax.get_title() for ax in deep_only.axes] == [names[1]]
    assert all(ax.collections for ax in both.axes + deep_only.axes)


def test_slider_steps_over_relative_depth_each_model_at_its_nearest_layer(two_depths, names):
    fig = two_depths.figure()
    steps = fig.layout.sliders[0].steps
    assert len(steps) == 6 and len(fig.frames) == 6  # the deeper model's layers
    relative = {(m, layer): d for m, layer, d in two_depths.metrics[["model", "layer", "relative_depth"]].values}
    deep_layers = ["embed", *map(str, range(5))]
    short_layers = ["embed", *map(str, range(3))]
    for step, frame, deep in zip(steps, fig.frames, deep_layers):
        assert list(step.args[0]) == [frame.name]
        row = relative[(names[1], deep)]
        shown = min(
            short_layers, key=lambda layer: (abs(relative[(names[0], layer)] - row), relative[(names[0], layer)])
        )
        title = {layer: two_depths.titles[layer] for layer in deep_layers}
        assert step.label == f"{title[shown]} · {title[deep]}"
        assert [a.text for a in frame.layout.annotations] == [
            f"{names[0]} · {title[shown]}",
            f"{names[1]} · {title[deep]}",
        ]
        for trace, (model, layer) in zip(frame.data, [(names[0], shown)] * 2 + [(names[1], deep)] * 2):
            rows = two_depths.projection
            rows = rows[(rows["model"] == model) & (rows["layer"] == layer) & (rows["set"] == trace.name)]
            np.testing.assert_allclose(trace.x, rows["pc1"]) and np.testing.assert_allclose(trace.y, rows["pc2"])
    assert [s.label for s in steps][:3] == ["embed · embed", "block 0 · block 0", "block 0 · block 1"]
    assert fig.layout.sliders[0].currentvalue.prefix == "layer: " and fig.layout.sliders[0].active == 0
    assert not fig.layout.updatemenus[0].buttons[0].args[0]  # play is a button, nothing plays on load
    assert [a.text for a in fig.layout.annotations] == [a.text for a in fig.frames[0].layout.annotations]


def test_written_run_no_warnings_and_loads_back(two_depths, names, tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        two_depths.save(tmp_path)
    saved = pd.read_csv(tmp_path / "metrics.csv", dtype={"layer": str})
    pd.testing.assert_series_equal(saved["relative_depth"], two_depths.metrics["relative_depth"])
    assert sorted(p.name for p in (tmp_path / "layers").iterdir()) == sorted(
        ["layer-embed.png", *(f"layer-{k:02d}.png" for k in range(5))]
    )
    loaded = layerscope.load_run(tmp_path)
    assert isinstance(loaded, LayersResult)
    pd.testing.assert_series_equal(loaded.metrics["relative_depth"], two_depths.metrics["relative_depth"])
    old = tmp_path / "metrics.csv"  # a run saved before the column existed: computed from run.json's n_layers
    saved.drop(columns="relative_depth").to_csv(old, index=False)
    again = layerscope.load_run(tmp_path)
    np.testing.assert_allclose(again.metrics["relative_depth"], two_depths.metrics["relative_depth"])
    assert [s.label for s in again.figure().layout.sliders[0].steps] == [
        s.label for s in two_depths.figure().layout.sliders[0].steps
    ]


def test_one_model_keeps_the_layer_names(tiny_models):
    result = run_layers(LayersConfig(sets=SETS), [tiny_models["llama"]])
    assert list(result.metrics["relative_depth"]) == [0, 1 / 3, 2 / 3, 1]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        grid = grid_figure(result._placed(), result.titles, title="t")
        curves = metrics_figure(result.metrics, title="t")
        grid.canvas.draw()
        curves.canvas.draw()
    drawn = [ax for ax in grid.axes if ax.axison]
    assert [ax.get_title() for ax in drawn] == ["embed", "block 0", "block 1", "block 2"]
    assert {ax.get_xlabel() for ax in curves.axes} == {"layer (embed, then block)"}
    assert [t.get_text() for t in curves.axes[0].get_xticklabels()] == ["embed", "0", "1", "2"]
    fig = result.figure()
    assert [s.label for s in fig.layout.sliders[0].steps] == ["embed", "block 0", "block 1", "block 2"]
    assert [f.name for f in fig.frames] == ["embed", "0", "1", "2"]
    assert [a.text for a in fig.layout.annotations] == ["llama"]


def test_same_depth_models_keep_the_layer_names(tiny_models):
    result = layerscope.layers(list(SETS), model=[tiny_models["llama"], tiny_models["qwen3"]], layers="embed,-1")
    fig = result.figure()
    assert [s.label for s in fig.layout.sliders[0].steps] == ["embed", "block 2"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        curves = metrics_figure(result.metrics, title="t")
    assert {ax.get_xlabel() for ax in curves.axes} == {"layer (embed, then block)"}
