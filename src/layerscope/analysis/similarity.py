"""Similarity metrics between vectors: cosine, L1, L2, max absolute difference (seed 001)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..errors import LayerscopeError

METRICS = ("cosine", "l1", "l2", "max_abs_diff")


def _pair(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a = np.atleast_2d(np.asarray(a, dtype=np.float64))
    b = np.atleast_2d(np.asarray(b, dtype=np.float64))
    if a.shape[-1] != b.shape[-1]:
        raise LayerscopeError(f"cannot compare vectors of width {a.shape[-1]} and {b.shape[-1]}")
    return np.broadcast_arrays(a, b)


def compare(a: np.ndarray, b: np.ndarray) -> pd.DataFrame:
    """Row-wise metrics between ``a`` and ``b``, each ``(n, d)`` or ``(d,)`` (broadcast).

    Returns a frame with columns ``cosine, l1, l2, max_abs_diff`` and one row per pair.
    Cosine of a zero vector is NaN.

    Example:
        >>> compare(last_layer_vectors, answer_embeddings)["cosine"].mean()
    """
    a, b = _pair(a, b)
    diff = a - b
    norms = np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        cosine = np.where(norms > 0, np.sum(a * b, axis=-1) / norms, np.nan)
    return pd.DataFrame(
        {
            "cosine": cosine,
            "l1": np.abs(diff).sum(axis=-1),
            "l2": np.linalg.norm(diff, axis=-1),
            "max_abs_diff": np.abs(diff).max(axis=-1),
        }
    )
