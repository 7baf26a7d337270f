"""PCA in numpy: fit a basis on one set of vectors, project any other set onto it."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import LayerscopeError


@dataclass(frozen=True)
class PCABasis:
    """A fitted PCA basis.

    Attributes:
        mean: ``(d,)`` the mean of the vectors it was fitted on.
        components: ``(k, d)`` orthonormal principal directions, largest variance first.
        explained_variance: ``(k,)`` variance along each direction.
        explained_variance_ratio: ``(k,)`` that variance over the total variance of the fitted vectors.
    """

    mean: np.ndarray
    components: np.ndarray
    explained_variance: np.ndarray
    explained_variance_ratio: np.ndarray

    @property
    def n_components(self) -> int:
        return int(self.components.shape[0])

    def transform(self, vectors: np.ndarray) -> np.ndarray:
        """Project ``(n, d)`` vectors onto this basis -> ``(n, k)`` coordinates."""
        vectors = np.asarray(vectors, dtype=np.float64)
        if vectors.ndim != 2 or vectors.shape[1] != self.mean.shape[0]:
            raise LayerscopeError(
                f"cannot project vectors of shape {vectors.shape} onto a basis of dimension {self.mean.shape[0]}"
            )
        return (vectors - self.mean) @ self.components.T


def fit_pca(vectors: np.ndarray, n_components: int) -> PCABasis:
    """Fit PCA on ``(n, d)`` vectors with an exact SVD.

    Signs are fixed as scikit-learn fixes them (the largest-magnitude loading of each component is
    positive), so results are reproducible. Requires ``n_components <= min(n, d)``.

    Example:
        >>> basis = fit_pca(digit_rows, 3)
        >>> coords = basis.transform(number_word_rows)   # (10, 3) in the digits' basis
    """
    x = np.asarray(vectors, dtype=np.float64)
    if x.ndim != 2:
        raise LayerscopeError(f"PCA needs a 2-D array (items, dims); got shape {x.shape}")
    n, d = x.shape
    if not 1 <= n_components <= min(n, d):
        raise LayerscopeError(
            f"cannot fit {n_components} principal components on {n} vectors of dimension {d}; valid: 1..{min(n, d)}"
        )
    mean = x.mean(axis=0)
    centered = x - mean
    _, singular, vt = np.linalg.svd(centered, full_matrices=False)
    signs = np.sign(vt[np.arange(vt.shape[0]), np.abs(vt).argmax(axis=1)])
    signs[signs == 0] = 1.0
    vt = vt * signs[:, None]
    variance = singular**2 / max(n - 1, 1)
    total = variance.sum()
    ratio = variance / total if total > 0 else np.zeros_like(variance)
    return PCABasis(
        mean=mean,
        components=vt[:n_components],
        explained_variance=variance[:n_components],
        explained_variance_ratio=ratio[:n_components],
    )
