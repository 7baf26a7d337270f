"""Linear CKA and layer-by-layer similarity matrices over a set of items."""

from __future__ import annotations

import numpy as np

from ..errors import LayerscopeError


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
