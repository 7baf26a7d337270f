"""How well labelled vectors separate into their categories: silhouette and distance ratio (numpy).

Example:
    >>> silhouette(vectors, labels)          # in [-1, 1]; 1: tight, well separated clusters
    0.41
    >>> between_within_ratio(vectors, labels)  # mean distance across categories / within them
    1.8
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def pairwise_distances(vectors: np.ndarray) -> np.ndarray:
    """Euclidean distances ``(n, n)`` between the rows of ``(n, d)`` vectors, in float64."""
    x = np.asarray(vectors, dtype=np.float64)
    squared = (x * x).sum(axis=1)
    d2 = squared[:, None] + squared[None, :] - 2.0 * (x @ x.T)
    np.fill_diagonal(d2, 0.0)
    return np.sqrt(np.maximum(d2, 0.0))


def _codes(labels: Sequence) -> np.ndarray:
    return np.unique(np.asarray(labels), return_inverse=True)[1].ravel()


def silhouette(vectors: np.ndarray, labels: Sequence) -> float:
    """Mean silhouette coefficient (euclidean), as ``sklearn.metrics.silhouette_score`` defines it.

    A point alone in its category scores 0. NaN when there are fewer than 2 or more than ``n - 1`` categories.
    """
    codes = _codes(labels)
    n, k = len(codes), int(codes.max()) + 1 if len(codes) else 0
    if not 2 <= k <= n - 1:
        return float("nan")
    dist = pairwise_distances(vectors)
    onehot = np.zeros((n, k))
    onehot[np.arange(n), codes] = 1.0
    sizes = onehot.sum(axis=0)  # (k,)
    sums = dist @ onehot  # (n, k): distance from each point to all points of each category
    own = sizes[codes]
    a = sums[np.arange(n), codes] / np.maximum(own - 1, 1)
    means = sums / sizes
    means[np.arange(n), codes] = np.inf
    b = means.min(axis=1)
    s = (b - a) / np.maximum(np.maximum(a, b), np.finfo(float).tiny)
    s[own == 1] = 0.0
    return float(s.mean())


def between_within_ratio(vectors: np.ndarray, labels: Sequence) -> float:
    """Mean distance between points of different categories over the mean distance within one.

    Above 1 when categories sit apart; NaN without a pair inside a category or a pair across two.
    """
    codes = _codes(labels)
    dist = pairwise_distances(vectors)
    upper = np.triu(np.ones_like(dist, dtype=bool), k=1)
    same = (codes[:, None] == codes[None, :]) & upper
    diff = (codes[:, None] != codes[None, :]) & upper
    if not same.any() or not diff.any():
        return float("nan")
    within = dist[same].mean()
    return float(dist[diff].mean() / within) if within > 0 else float("inf")
