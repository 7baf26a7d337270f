"""Linear CKA and layer-by-layer similarity matrices over a set of items."""

from __future__ import annotations

import numpy as np

from ..errors import LayerscopeError


def cka_chance(n_items: int, width: int) -> float:
    """The linear CKA of two unrelated representations of ``n_items`` items in ``width`` dimensions: about
    ``width / (width + n_items)`` (independent Gaussian features; measured here to within 0.01 for widths 64 and
    640 and 4 to 128 items). With few items next to the width every pair of layers looks alike (0.99 for 4
    items at width 640), so a CKA value says something only when this is well below it.

    Example:
        >>> round(cka_chance(4, 640), 3), cka_chance(640, 640)
        (0.994, 0.5)
    """
    return width / (width + n_items) if width > 0 and n_items > 0 else float("nan")


#: read positions per dimension of the (narrower) width a CKA comparison needs before its best matches are
#: stated: at one per dimension, unrelated representations give CKA 0.5 (:func:`cka_chance`)
POSITIONS_PER_WIDTH = 1


def enough_positions(n_items: int, width: int) -> bool:
    """Whether ``n_items`` read positions are enough for CKA at ``width``: ``n_items >= POSITIONS_PER_WIDTH *
    width``."""
    return width > 0 and n_items >= POSITIONS_PER_WIDTH * width


def linear_cka(x: np.ndarray, y: np.ndarray) -> float:
    """Linear centered kernel alignment between ``x (n, d1)`` and ``y (n, d2)`` (same n items).

    ``||Yc^T Xc||_F^2 / (||Xc^T Xc||_F ||Yc^T Yc||_F)`` with column-centred ``Xc, Yc``: 1 for identical
    inputs, invariant to orthogonal transforms and isotropic scaling of either side (Kornblith et al. 2019).

    Example:
        >>> linear_cka(residuals[4], residuals[5])
        0.93
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.ndim != 2 or y.ndim != 2 or x.shape[0] != y.shape[0]:
        raise LayerscopeError(f"CKA needs two (items, dims) arrays with the same items; got {x.shape} and {y.shape}")
    xc = x - x.mean(axis=0)
    yc = y - y.mean(axis=0)
    # Gram form is cheaper when items < dims (the usual case: tens of prompts, hundreds of dims).
    kx, ky = xc @ xc.T, yc @ yc.T
    denom = np.linalg.norm(kx) * np.linalg.norm(ky)
    return float(np.sum(kx * ky) / denom) if denom > 0 else float("nan")


def cka_matrix(residuals: np.ndarray) -> np.ndarray:
    """``(layer, item, d)`` -> ``(layer, layer)`` linear CKA between every pair of layers (diagonal 1)."""
    residuals = np.asarray(residuals, dtype=np.float64)
    grams = []
    for layer in residuals:
        centred = layer - layer.mean(axis=0)
        gram = centred @ centred.T
        norm = np.linalg.norm(gram)
        grams.append(gram / norm if norm > 0 else gram)
    flat = np.stack([g.ravel() for g in grams])
    matrix = flat @ flat.T
    # A layer whose vectors are all equal (e.g. the embedding of one shared token) has no centred
    # structure: its CKA with others is 0, and with itself 1 by convention.
    np.fill_diagonal(matrix, 1.0)
    return matrix


def mean_cosine_matrix(residuals: np.ndarray) -> np.ndarray:
    """``(layer, item, d)`` -> ``(layer, layer)``: cosine of layer i's and layer j's vector, averaged over items."""
    residuals = np.asarray(residuals, dtype=np.float64)
    norms = np.linalg.norm(residuals, axis=-1, keepdims=True)
    unit = np.divide(residuals, norms, out=np.zeros_like(residuals), where=norms > 0)
    return np.einsum("lid,mid->lm", unit, unit) / residuals.shape[1]


def degenerate_layers(residuals: np.ndarray, rtol: float = 1e-6) -> np.ndarray:
    """``(layer, item, d)`` -> ``(layer,)`` bool: layers whose vectors are all alike across the items.

    A layer is degenerate when the variance of its vectors around their mean is at most ``rtol`` times
    their mean squared norm (for example the embedding of prompts that all end with the same token).
    """
    residuals = np.asarray(residuals, dtype=np.float64)
    centred = residuals - residuals.mean(axis=1, keepdims=True)
    spread = np.square(centred).sum(axis=(1, 2))
    scale = np.square(residuals).sum(axis=(1, 2))
    return spread <= rtol * np.maximum(scale, np.finfo(np.float64).tiny)


# ----- across two representations of the same items (e.g. every layer of model A against every layer of B) -----


def _gram(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return x @ x.T


def centered_gram(x: np.ndarray, *, debiased: bool = False) -> np.ndarray:
    """The linear kernel ``K = X X^T`` of ``x (n, d)``, centred for HSIC.

    ``debiased=False``: ``H K H`` with ``H = I - 11^T/n`` (the biased HSIC of Gretton et al. 2005 is
    ``<HKH, HLH> / (n-1)^2``). ``debiased=True``: the U-centred kernel (Szekely & Rizzo 2014): diagonal
    zeroed, row and column means over ``n - 2`` removed, grand mean over ``(n-1)(n-2)`` added back, diagonal
    zeroed again; ``<U(K), U(L)> / (n(n-3))`` is then the unbiased HSIC estimator of Song et al. (2012),
    the one debiased CKA uses (Kornblith et al. 2019; Nguyen et al. 2021). Needs ``n >= 4``.
    """
    gram = _gram(x)
    n = gram.shape[0]
    if not debiased:
        means = gram.mean(axis=0)
        return gram - means[:, None] - means[None, :] + means.mean()
    if n < 4:
        raise LayerscopeError(f"debiased CKA needs at least 4 items; got {n}")
    np.fill_diagonal(gram, 0.0)
    means = gram.sum(axis=0) / (n - 2)
    means -= means.sum() / (2 * (n - 1))
    gram -= means[:, None]
    gram -= means[None, :]
    np.fill_diagonal(gram, 0.0)
    return gram


def debiased_cka(x: np.ndarray, y: np.ndarray) -> float:
    """Debiased linear CKA between ``x (n, d1)`` and ``y (n, d2)``: linear CKA with the unbiased HSIC
    estimator (Song et al. 2012) in place of the biased one, which removes CKA's upward bias when items are
    few relative to dimensions (Kornblith et al. 2019; Nguyen et al. 2021). NaN when either side has no spread."""
    x, y = np.asarray(x), np.asarray(y)
    if x.ndim != 2 or y.ndim != 2 or x.shape[0] != y.shape[0]:
        raise LayerscopeError(f"CKA needs two (items, dims) arrays with the same items; got {x.shape} and {y.shape}")
    kx, ky = centered_gram(x, debiased=True), centered_gram(y, debiased=True)
    denom = np.sqrt(np.sum(kx * kx) * np.sum(ky * ky))
    return float(np.sum(kx * ky) / denom) if denom > 0 else float("nan")


def _unit_grams(layers: np.ndarray, debiased: bool) -> np.ndarray:
    """``(L, n, d)`` -> ``(L, n*n)``: each layer's centred kernel divided by its Frobenius norm (NaN rows when 0)."""
    out = np.empty((len(layers), layers.shape[1] ** 2), dtype=np.float64)
    for i, layer in enumerate(layers):
        layer = np.asarray(layer, dtype=np.float64)
        scale = np.sum(layer * layer)  # the trace of the raw kernel, a bound on its norm
        gram = centered_gram(layer, debiased=debiased).ravel()
        norm = np.sqrt(gram @ gram)
        out[i] = gram / norm if norm > 1e-10 * scale else np.nan
    return out


def cross_cka(a: np.ndarray, b: np.ndarray, *, debiased: bool = False) -> np.ndarray:
    """``(La, n, da)`` and ``(Lb, n, db)`` -> ``(La, Lb)``: linear CKA (or its debiased form) between every
    layer of ``a`` and every layer of ``b`` over the same ``n`` items; widths may differ.

    Each layer's ``n x n`` centred kernel is built once and normalized, so the matrix is one product of
    ``(La, n^2)`` and ``(n^2, Lb)``. A layer whose vectors are all alike (no centred spread) gives NaN.

    Example:
        >>> cross_cka(residuals_a, residuals_b).shape      # embed..norm of A against embed..norm of B
        (20, 29)
    """
    a, b = np.asarray(a), np.asarray(b)
    if a.ndim != 3 or b.ndim != 3 or a.shape[1] != b.shape[1]:
        raise LayerscopeError(
            f"cross CKA needs (layer, item, d) arrays with the same items; got {a.shape} and {b.shape}"
        )
    left = _unit_grams(a, debiased)
    if b is a:
        return left @ left.T
    matrix = np.empty((len(a), len(b)), dtype=np.float64)
    for j, layer in enumerate(b):  # one kernel of b at a time
        matrix[:, j] = left @ _unit_grams(layer[None], debiased)[0]
    return matrix
