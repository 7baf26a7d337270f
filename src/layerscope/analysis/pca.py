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
        scale = _power_of_two_scale(vectors, self.mean)
        with np.errstate(over="ignore"):  # coordinates past 1.8e308 are infinite
            return ((vectors / scale - self.mean / scale) @ self.components.T) * scale


def _power_of_two_scale(*arrays: np.ndarray) -> float:
    """The power of two at or above the largest magnitude in ``arrays`` (1.0 for zeros or empty arrays):
    dividing by it is exact, so scaled results equal unscaled ones wherever those do not overflow."""
    largest = max((float(np.abs(a).max()) for a in arrays if a.size), default=0.0)
    if not np.isfinite(largest) or largest == 0.0:
        return 1.0
    return float(np.ldexp(1.0, int(np.frexp(largest)[1])))


def fit_pca(vectors: np.ndarray, n_components: int) -> PCABasis:
    """Fit PCA on ``(n, d)`` vectors with an exact SVD (of the vectors scaled to at most 1 in magnitude, so
    extreme finite values fit; NaN or infinity is a :class:`LayerscopeError`).

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
    bad = int(np.count_nonzero(~np.isfinite(x)))
    if bad:
        raise LayerscopeError(
            f"cannot fit PCA: {bad} of {x.size} values are NaN or infinite (activations that overflowed; "
            "check the model's weights or load it in a wider dtype)"
        )
    # Computed on x / scale (entries in [-1, 1]) so that means, squares and the SVD never overflow, however
    # large the finite values (a float64 capture may reach 1e308; float32 weights up to 3.4e38).
    scale = _power_of_two_scale(x)
    scaled_mean = (x / scale).mean(axis=0)
    centered = x / scale - scaled_mean
    _, singular, vt = np.linalg.svd(centered, full_matrices=False)
    signs = np.sign(vt[np.arange(vt.shape[0]), np.abs(vt).argmax(axis=1)])
    signs[signs == 0] = 1.0
    vt = vt * signs[:, None]
    scaled_variance = singular**2 / max(n - 1, 1)
    total = scaled_variance.sum()
    ratio = scaled_variance / total if total > 0 else np.zeros_like(scaled_variance)
    with np.errstate(over="ignore"):  # a variance past 1.8e308 is infinite; its ratio stays exact
        variance = scaled_variance * scale * scale
        mean = scaled_mean * scale
    return PCABasis(
        mean=mean,
        components=vt[:n_components],
        explained_variance=variance[:n_components],
        explained_variance_ratio=ratio[:n_components],
    )
