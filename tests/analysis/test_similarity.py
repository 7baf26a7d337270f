"""Similarity metrics (cosine, L1, L2, max difference) against hand-computed numpy values."""

from __future__ import annotations

import numpy as np
import pytest

from layerscope.analysis.similarity import compare
from layerscope.errors import LayerscopeError


def test_metrics_equal_hand_computed():
    a = np.array([[1.0, 2.0, -2.0], [0.0, 3.0, 4.0]])
    b = np.array([[2.0, 0.0, -2.0], [0.0, -3.0, 4.0]])
    table = compare(a, b)
    np.testing.assert_allclose(table["cosine"], [(2 + 0 + 4) / (3 * np.sqrt(8)), (0 - 9 + 16) / 25])
    np.testing.assert_allclose(table["l1"], [1 + 2 + 0, 0 + 6 + 0])
    np.testing.assert_allclose(table["l2"], [np.sqrt(1 + 4), 6])
    np.testing.assert_allclose(table["max_abs_diff"], [2, 6])


def test_metrics_broadcast_one_reference():
    rng = np.random.default_rng(0)
    many, one = rng.normal(size=(5, 8)), rng.normal(size=8)
    table = compare(many, one)
    for i in range(5):
        expected = many[i] @ one / np.linalg.norm(many[i]) / np.linalg.norm(one)
        assert table["cosine"][i] == pytest.approx(expected)


def test_width_mismatch_is_an_error():
    with pytest.raises(LayerscopeError, match="width 3 and 4"):
        compare(np.zeros(3), np.zeros(4))
