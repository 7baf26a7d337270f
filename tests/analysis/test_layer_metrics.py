"""Separation and per-layer metrics against scikit-learn and plain loops."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from sklearn.decomposition import PCA
from sklearn.metrics import silhouette_score

from layerscope.analysis import (
    between_within_ratio,
    layer_metrics,
    project_layers,
    residual_norm,
    silhouette,
    top_variance_fraction,
)


def clusters(seed: int, sizes=(5, 7, 1, 4), d=12, spread=1.0):
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(len(sizes), d)) * 3
    x = np.concatenate([c + spread * rng.normal(size=(n, d)) for c, n in zip(centers, sizes)])
    labels = np.repeat([f"set{i}" for i in range(len(sizes))], sizes)
    return x, labels


@pytest.mark.parametrize("seed,spread", [(0, 1.0), (1, 5.0), (2, 0.1)])
def test_silhouette_equals_sklearn(seed, spread):
    x, labels = clusters(seed, spread=spread)
    assert silhouette(x, labels) == pytest.approx(silhouette_score(x, labels), abs=1e-9)


def test_silhouette_is_nan_for_one_category():
    x, _ = clusters(0)
    assert np.isnan(silhouette(x, ["a"] * len(x)))


def test_between_within_ratio_equals_a_pair_loop():
    x, labels = clusters(3)
    within, between = [], []
    for i, j in itertools.combinations(range(len(x)), 2):
        (within if labels[i] == labels[j] else between).append(np.linalg.norm(x[i] - x[j]))
    assert between_within_ratio(x, labels) == pytest.approx(np.mean(between) / np.mean(within), rel=1e-10)


def test_layer_metrics_rows_match_their_definitions():
    x, labels = clusters(4)
    array = np.stack([x, 10 * x, x[:, :1] * np.ones((1, 12))])  # the last layer lies on a line
    table = layer_metrics(array, labels, ["embed", "1", "2"])
    assert list(table["layer"]) == ["embed", "1", "2"]
    assert table["residual_norm"][1] == pytest.approx(10 * residual_norm(x))
    assert residual_norm(x) == pytest.approx(np.mean([np.linalg.norm(r) for r in x]))
    assert table["silhouette"][0] == pytest.approx(table["silhouette"][1])  # scale-free
    assert table["top2_variance"][0] == pytest.approx(PCA(2).fit(x).explained_variance_ratio_.sum())
    assert table["top2_variance"][2] == pytest.approx(1.0)
    assert top_variance_fraction(x, 12) == pytest.approx(1.0)


def test_project_layers_own_and_fixed_basis():
    x, _ = clusters(5)
    array = np.stack([x, 2 * x + 1])
    own, own_ratio = project_layers(array, dims=2)
    for slot in range(2):
        pca = PCA(2).fit(array[slot])
        np.testing.assert_allclose(np.abs(own[slot]), np.abs(pca.transform(array[slot])), atol=1e-9)
        np.testing.assert_allclose(own_ratio[slot], pca.explained_variance_ratio_, atol=1e-9)
    fixed, fixed_ratio = project_layers(array, dims=2, basis_slot=0)
    basis = PCA(2).fit(x)
    np.testing.assert_allclose(np.abs(fixed[1]), np.abs((array[1] - x.mean(0)) @ basis.components_.T), atol=1e-9)
    np.testing.assert_allclose(fixed_ratio[0], own_ratio[0], atol=1e-12)


def test_layer_metrics_with_depths_and_layer_order():
    import pandas as pd

    from layerscope.analysis.layer_projection import layer_order

    x, labels = clusters(6)
    table = layer_metrics(np.stack([x, 2 * x]), labels, ["embed", "0"], depths=[0, 1])
    assert list(table.columns[:2]) == ["layer", "depth"] and list(table["depth"]) == [0, 1]
    rows = pd.DataFrame({"layer": ["norm", "2", "embed", "10", "2"], "depth": [12, 3, 0, 11, 3]})
    assert layer_order(rows) == ["embed", "2", "10", "norm"]
    assert layer_order(rows.drop(columns="depth")) == ["norm", "2", "embed", "10"]


def test_relative_depth_column_is_depth_over_the_number_of_blocks():
    from fractions import Fraction

    from layerscope.analysis.layer_metrics import relative_depth

    x, labels = clusters(7)
    table = layer_metrics(np.stack([x, x, x, x]), labels, ["embed", "0", "4", "norm"], depths=[0, 1, 5, 6], n_blocks=5)
    assert list(table.columns[:3]) == ["layer", "depth", "relative_depth"]
    assert list(table["relative_depth"]) == [float(Fraction(d, 5)) for d in (0, 1, 5, 6)]  # embed 0, last block 1
    assert "relative_depth" not in layer_metrics(np.stack([x]), labels, ["embed"], depths=[0]).columns
    assert relative_depth(18, 18) == 1.0 and relative_depth(0, 3) == 0.0
    with pytest.raises(ValueError):
        relative_depth(1, 0)


def _order_keeping_assignments(n: int, m: int):
    """Every way to put n ordered layers into m ordered rows, one per row (brute force)."""
    return itertools.combinations(range(m), n)


@pytest.mark.parametrize(
    "rows,other",
    [
        ([0, 0.2, 0.4, 0.6, 0.8, 1], [0, 1 / 3, 2 / 3, 1]),
        ([k / 18 for k in range(19)], [k / 3 for k in range(4)]),
        ([0, 0.05, 1], [0, 0.4, 0.6]),
        ([0, 0.5, 1], [0.5]),
        ([0, 1 / 3, 2 / 3, 1, 4 / 3], [0, 0.25, 0.5, 0.75, 1.0]),
    ],
)
def test_align_layers_is_the_best_order_keeping_assignment(rows, other):
    from layerscope.analysis.layer_metrics import align_layers

    positions = {
        "deep": [(f"d{i}", r) for i, r in enumerate(rows)],
        "short": [(f"s{i}", r) for i, r in enumerate(other)],
    }
    got_rows, placed = align_layers(positions)
    assert got_rows == rows and placed["deep"] == [f"d{i}" for i in range(len(rows))]
    assert [p for p in placed["short"] if p is not None] == [f"s{i}" for i in range(len(other))]  # each once, in order
    chosen = [j for j, p in enumerate(placed["short"]) if p is not None]
    cost = sum(abs(other[i] - rows[j]) for i, j in enumerate(chosen))
    best = min(
        sum(abs(other[i] - rows[j]) for i, j in enumerate(c)) for c in _order_keeping_assignments(len(other), len(rows))
    )
    assert cost == pytest.approx(best)


def test_align_layers_fill_gives_each_model_its_nearest_layer():
    from layerscope.analysis.layer_metrics import align_layers

    deep = [(f"d{i}", i / 18) for i in range(19)]
    short = [(f"s{i}", i / 3) for i in range(4)]
    rows, placed = align_layers({"short": short, "deep": deep}, fill=True)  # the deepest sets the rows
    assert rows == [i / 18 for i in range(19)] and placed["deep"] == [name for name, _ in deep]
    for row, name in zip(rows, placed["short"]):
        distances = {n: abs(d - row) for n, d in short}
        assert distances[name] == pytest.approx(min(distances.values()))
    assert placed["short"][3] == "s0" and placed["short"][4] == "s1"  # 3/18 is a tie: the shallower layer


def test_relative_positions_only_when_depths_differ():
    import pandas as pd

    from layerscope.analysis.layer_metrics import relative_positions

    same = pd.DataFrame({"model": ["a", "a", "b", "b"], "layer": ["embed", "0"] * 2, "relative_depth": [0, 1] * 2})
    assert relative_positions(same) is None
    assert relative_positions(same[same["model"] == "a"]) is None
    assert relative_positions(same.drop(columns="relative_depth")) is None
    differ = pd.DataFrame(
        {
            "model": ["a", "a", "a", "b", "b"],
            "layer": ["1", "embed", "0", "embed", "0"],
            "relative_depth": [1, 0, 0.5, 0, 1],
        }
    )
    assert relative_positions(differ) == {"a": [("embed", 0), ("0", 0.5), ("1", 1)], "b": [("embed", 0), ("0", 1)]}
