"""Linear CKA and the layer-by-layer matrices against an independent formula and their definitions."""

from __future__ import annotations

import numpy as np
import pytest

from layerscope.analysis.cka import cka_matrix, linear_cka, mean_cosine_matrix
from layerscope.analysis.similarity import compare


def _reference_cka(x, y):
    """CKA from its feature-space definition (a second, independent formula)."""
    xc, yc = x - x.mean(0), y - y.mean(0)
    return np.linalg.norm(yc.T @ xc) ** 2 / (np.linalg.norm(xc.T @ xc) * np.linalg.norm(yc.T @ yc))


def test_cka_of_a_set_with_itself_is_one_and_invariances():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(20, 12))
    y = x @ rng.normal(size=(12, 7)) + 0.1 * rng.normal(size=(20, 7))
    assert linear_cka(x, x) == pytest.approx(1.0)
    q, _ = np.linalg.qr(rng.normal(size=(12, 12)))  # an orthogonal rotation
    assert linear_cka(x @ q * 3.7, y) == pytest.approx(linear_cka(x, y))
    assert linear_cka(x, y) == pytest.approx(_reference_cka(x, y))


def test_cka_and_cosine_matrices_match_pairwise_definitions():
    rng = np.random.default_rng(2)
    residuals = rng.normal(size=(4, 10, 6))
    matrix = cka_matrix(residuals)
    for i in range(4):
        for j in range(4):
            assert matrix[i, j] == pytest.approx(linear_cka(residuals[i], residuals[j]))
    cos = mean_cosine_matrix(residuals)
    expected = np.mean([compare(residuals[0], residuals[2])["cosine"]])
    assert cos[0, 2] == pytest.approx(expected)
    np.testing.assert_allclose(np.diag(cos), 1.0)
