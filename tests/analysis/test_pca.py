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
