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
