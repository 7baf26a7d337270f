"""PCA against scikit-learn (the oracle), up to the sign of each component."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.decomposition import PCA

from layerscope.analysis import fit_pca
from layerscope.errors import LayerscopeError


@pytest.mark.parametrize("n, d, k", [(10, 640, 3), (50, 8, 2), (5, 5, 5)])
def test_matches_sklearn_up_to_sign(n, d, k):
    rng = np.random.default_rng(n + d)
    x = rng.normal(size=(n, d)) * rng.uniform(0.1, 3, size=d)
    ours = fit_pca(x, k)
    ref = PCA(n_components=k, svd_solver="full").fit(x)
    signs = np.sign(np.sum(ours.components * ref.components_, axis=1))
    np.testing.assert_allclose(ours.components * signs[:, None], ref.components_, atol=1e-8)
    np.testing.assert_allclose(ours.explained_variance_ratio, ref.explained_variance_ratio_, rtol=1e-8)
    np.testing.assert_allclose(ours.transform(x) * signs, ref.transform(x), atol=1e-8)


def test_fixed_basis_projects_other_vectors():
    rng = np.random.default_rng(0)
    digits, words = rng.normal(size=(10, 16)), rng.normal(size=(10, 16))
    basis = fit_pca(digits, 3)
    ref = PCA(n_components=3, svd_solver="full").fit(digits)
    signs = np.sign(np.sum(basis.components * ref.components_, axis=1))
    np.testing.assert_allclose(basis.transform(words) * signs, ref.transform(words), atol=1e-8)


def test_too_many_components_names_valid_range():
    with pytest.raises(LayerscopeError, match="valid: 1..3"):
        fit_pca(np.zeros((3, 10)), 4)


def test_dimension_mismatch():
    basis = fit_pca(np.random.default_rng(1).normal(size=(6, 4)), 2)
    with pytest.raises(LayerscopeError, match="dimension 4"):
        basis.transform(np.zeros((2, 5)))


@pytest.mark.parametrize("scale", [3e38, 1e200, 2.0**1020, 1e-300])
def test_extreme_finite_values_give_the_scaled_basis(scale):
    """Vectors scaled by ``scale`` (float32's largest weights, or far past them in float64) give the same
    components, ratios and scaled coordinates as the unscaled vectors: no overflow, no failed SVD."""
    x = np.random.default_rng(3).normal(size=(12, 40))
    x /= np.abs(x).max()
    plain, extreme = fit_pca(x, 3), fit_pca(x * scale, 3)
    np.testing.assert_allclose(extreme.components, plain.components, atol=1e-12)
    np.testing.assert_allclose(extreme.explained_variance_ratio, plain.explained_variance_ratio, rtol=1e-12)
    np.testing.assert_allclose(extreme.mean, plain.mean * scale, rtol=1e-12)
    np.testing.assert_allclose(extreme.transform(x * scale) / scale, plain.transform(x), atol=1e-12)


def test_float32_weights_at_their_largest():
    x = np.random.default_rng(4).choice(np.float32([-3e38, 3e38]), size=(10, 64)).astype(np.float32)
    basis = fit_pca(x, 2)
    assert np.isfinite(basis.components).all() and np.isfinite(basis.explained_variance_ratio).all()
    assert np.isfinite(basis.transform(x)).all()


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_or_infinity_is_refused_in_one_line(bad):
    x = np.random.default_rng(5).normal(size=(6, 8))
    x[2, 3] = x[4, 1] = bad
    with pytest.raises(LayerscopeError, match=r"^cannot fit PCA: 2 of 48 values are NaN or infinite"):
        fit_pca(x, 2)
