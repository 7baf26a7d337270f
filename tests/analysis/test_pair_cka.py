"""Pairwise CKA of two models' captures: every cell as the single-pair definition, the summaries as documented."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from layerscope.analysis.cka import debiased_cka, linear_cka
from layerscope.analysis.pair_cka import PairCKA, nearest_layers, pair_cka


def _capture(name: str, residuals: np.ndarray) -> SimpleNamespace:
    """What pair_cka reads of a capture: ``residuals (layer, item, d)``, layer names and relative depths."""
    n_blocks = len(residuals) - 1
    return SimpleNamespace(
        name=name,
        residuals=residuals,
        layers=["embed", *map(str, range(n_blocks))],
        relative_depths=[d / n_blocks for d in range(len(residuals))],
    )


def test_every_cell_is_the_single_pair_cka_and_widths_may_differ():
    rng = np.random.default_rng(0)
    a = _capture("a", rng.normal(size=(4, 12, 16)))
    b = _capture("b", rng.normal(size=(6, 12, 24)))
    pair = pair_cka(a, b)
    assert pair.linear.shape == pair.debiased.shape == (4, 6)
    assert (pair.a, pair.b, pair.layers_a, pair.layers_b) == ("a", "b", a.layers, b.layers)
    for i in range(4):
        for j in range(6):
            assert pair.linear[i, j] == pytest.approx(linear_cka(a.residuals[i], b.residuals[j]), rel=1e-9)
            assert pair.debiased[i, j] == pytest.approx(debiased_cka(a.residuals[i], b.residuals[j]), rel=1e-9)


def test_a_capture_against_itself_has_a_unit_diagonal_and_summaries_of_one():
    rng = np.random.default_rng(1)
    a = _capture("a", rng.normal(size=(5, 10, 8)))
    pair = pair_cka(a, a)
    np.testing.assert_allclose(np.diag(pair.linear), 1.0, atol=1e-12)
    np.testing.assert_allclose(np.diag(pair.debiased), 1.0, atol=1e-12)
    assert pair.best() == list(range(5))
    assert pair.aligned() == pytest.approx(1.0) and pair.mean_best() == pytest.approx(1.0)
    assert pair.aligned(debiased=True) == pytest.approx(1.0)


def test_nearest_layers_by_relative_depth_first_on_a_tie():
    assert nearest_layers([0.0, 0.5, 1.0], [0.0, 0.25, 0.5, 0.75, 1.0]) == [0, 2, 4]
    assert nearest_layers([0.5], [0.25, 0.75]) == [0]  # a tie: the first
    assert nearest_layers([0.0, 0.4, 1.0], [0.0, 1.0]) == [0, 0, 1]


def test_best_aligned_and_mean_best_leave_nan_rows_out():
    linear = np.array([[np.nan, np.nan, np.nan], [0.2, 0.9, 0.4], [0.1, 0.3, 0.7]])
    pair = PairCKA(
        a="a", b="b", layers_a=["embed", "0", "1"], layers_b=["embed", "0", "1"], linear=linear,
        debiased=linear - 0.1, relative_a=[0.0, 0.5, 1.0], relative_b=[0.0, 0.5, 1.0],
    )  # fmt: skip
    assert pair.best() == [None, 1, 2] and pair.best(debiased=True) == [None, 1, 2]
    assert pair.aligned() == pytest.approx((0.9 + 0.7) / 2)
    assert pair.mean_best() == pytest.approx((0.9 + 0.7) / 2)
    assert pair.mean_best(debiased=True) == pytest.approx((0.8 + 0.6) / 2)
