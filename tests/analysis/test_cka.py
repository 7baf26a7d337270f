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


# ----- across two representations: debiased CKA and the layer-by-layer cross matrix -------------------------------


def _hsic_biased(k, m):
    """HSIC from its definition (Gretton et al. 2005): tr(K H L H) / (n-1)^2, H = I - 11^T / n."""
    n = len(k)
    h = np.eye(n) - np.ones((n, n)) / n
    return np.trace(k @ h @ m @ h) / (n - 1) ** 2


def _hsic_unbiased(k, m):
    """The unbiased HSIC estimator, written from Song et al. (2012), eq. 5, with the diagonals of K and L zeroed."""
    n = len(k)
    kt, lt = k - np.diag(np.diag(k)), m - np.diag(np.diag(m))
    one = np.ones(n)
    term = (
        np.trace(kt @ lt)
        + (one @ kt @ one) * (one @ lt @ one) / ((n - 1) * (n - 2))
        - 2 / (n - 2) * (one @ kt @ lt @ one)
    )
    return term / (n * (n - 3))


def _cka_from_hsic(x, y, hsic):
    k, m = x @ x.T, y @ y.T
    return hsic(k, m) / np.sqrt(hsic(k, k) * hsic(m, m))


def test_both_forms_equal_the_hsic_definitions():
    from layerscope.analysis.cka import cross_cka, debiased_cka

    rng = np.random.default_rng(3)
    x = rng.normal(size=(15, 40))
    y = np.tanh(x[:, :25] @ rng.normal(size=(25, 30))) + 0.3 * rng.normal(size=(15, 30))
    assert linear_cka(x, y) == pytest.approx(_cka_from_hsic(x, y, _hsic_biased), rel=1e-10)
    assert debiased_cka(x, y) == pytest.approx(_cka_from_hsic(x, y, _hsic_unbiased), rel=1e-10)
    assert debiased_cka(x, y) < linear_cka(x, y)  # the bias removed: few items, many dimensions
    a = np.stack([x, x * 2 + 1, rng.normal(size=(15, 40))])
    b = np.stack([y, rng.normal(size=(15, 30))])
    for debiased, hsic in ((False, _hsic_biased), (True, _hsic_unbiased)):
        matrix = cross_cka(a, b, debiased=debiased)
        assert matrix.shape == (3, 2)
        for i in range(3):
            for j in range(2):
                assert matrix[i, j] == pytest.approx(_cka_from_hsic(a[i], b[j], hsic), rel=1e-9)


def test_cross_cka_invariances_and_self():
    from layerscope.analysis.cka import cross_cka, debiased_cka

    rng = np.random.default_rng(4)
    a = rng.normal(size=(4, 12, 9))
    np.testing.assert_allclose(np.diag(cross_cka(a, a)), 1.0)
    np.testing.assert_allclose(np.diag(cross_cka(a, a, debiased=True)), 1.0)
    q, _ = np.linalg.qr(rng.normal(size=(9, 9)))
    turned = a @ q * 5.3  # an orthogonal rotation and an isotropic scaling of one side
    for debiased in (False, True):
        np.testing.assert_allclose(
            cross_cka(a, turned, debiased=debiased), cross_cka(a, a, debiased=debiased), atol=1e-10
        )
    assert debiased_cka(a[0] @ q * 0.01, a[1]) == pytest.approx(debiased_cka(a[0], a[1]))


def test_cross_cka_of_a_layer_without_spread_is_nan_and_debiased_needs_4_items():
    from layerscope.analysis.cka import cross_cka, debiased_cka
    from layerscope.errors import LayerscopeError

    rng = np.random.default_rng(5)
    a = rng.normal(size=(2, 6, 4))
    a[0] = rng.normal(size=4)  # every item alike
    matrix = cross_cka(a, a)
    assert np.isnan(matrix[0]).all() and matrix[1, 1] == pytest.approx(1.0)
    with pytest.raises(LayerscopeError, match="at least 4"):
        debiased_cka(a[1][:3], a[1][:3])
