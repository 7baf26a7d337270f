"""Similarity metrics, CKA and phases against hand-computed numpy values and planted structure."""

from __future__ import annotations

import numpy as np
import pytest

from layerscope.analysis.cka import cka_matrix, linear_cka, mean_cosine_matrix
from layerscope.analysis.phases import find_phases
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


def test_planted_two_phase_input_gives_the_planted_boundary():
    rng = np.random.default_rng(3)
    # 12 layers of 30 items: layers 0-6 share one representation, 7-11 another, each with small noise.
    first, second = rng.normal(size=(30, 16)), rng.normal(size=(30, 16))
    layers = [first + 0.05 * rng.normal(size=first.shape) for _ in range(7)]
    layers += [second + 0.05 * rng.normal(size=second.shape) for _ in range(5)]
    phases = find_phases(cka_matrix(np.stack(layers)))
    assert phases.bounds == [(0, 6), (7, 11)]
    assert phases.boundaries == [7]
    assert phases.describe() == "0-6 | 7-11"


def test_fixed_number_of_phases_and_bad_input():
    sim = np.eye(5)
    assert len(find_phases(sim, n_phases=3).bounds) == 3
    with pytest.raises(LayerscopeError, match="valid: 1..5"):
        find_phases(sim, n_phases=6)
    with pytest.raises(LayerscopeError, match="square"):
        find_phases(np.zeros((2, 3)))
