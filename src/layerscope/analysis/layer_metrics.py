"""Per-layer numbers for what seed 002 eyeballed: separation, scale, and linearization.

Example:
    >>> table = layer_metrics(array, labels, ["embed", "0", "1"], depths=[0, 1, 2])   # array: (layer, item, d)
    >>> list(table.columns)
    ['layer', 'depth', 'silhouette', 'between_within', 'residual_norm', 'top2_variance']
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from .pca import fit_pca
from .separation import between_within_ratio, silhouette

_ROWS = 4096


def residual_norm(vectors: np.ndarray) -> float:
    """Mean L2 norm of the rows of ``(n, d)`` vectors (the residual stream's scale).

    Rows are converted to float64 ``_ROWS`` at a time, so a memory-mapped capture is never copied whole.
    """
    norms = [
        np.linalg.norm(np.asarray(vectors[i : i + _ROWS], dtype=np.float64), axis=1)
        for i in range(0, len(vectors), _ROWS)
    ]
    return float(np.concatenate(norms).mean()) if norms else float("nan")


def top_variance_fraction(vectors: np.ndarray, k: int = 2) -> float:
    """Fraction of the total variance of ``(n, d)`` vectors along their top ``k`` principal components."""
    x = np.asarray(vectors, dtype=np.float64)
    k = min(k, *x.shape)
    if x.shape[0] < 2:
        return float("nan")
    return float(fit_pca(x, k).explained_variance_ratio.sum())


def layer_metrics(
    array: np.ndarray, labels: Sequence, layer_names: Sequence[str], depths: Sequence[int] | None = None
) -> pd.DataFrame:
    """One row per layer of ``array`` ``(layer, item, d)``: silhouette, between/within ratio, norm, top-2 variance.

    ``layer_names`` fill the column ``layer`` (``embed``, ``0``, ...); ``depths``, when given, the column
    ``depth`` (0 = embed, ``k + 1`` = block ``k``).
    """
    rows = []
    for slot, (name, vectors) in enumerate(zip(layer_names, array)):
        vectors = np.asarray(vectors, dtype=np.float64)
        rows.append(
            {
                "layer": name,
                **({"depth": int(depths[slot])} if depths is not None else {}),
                "silhouette": silhouette(vectors, labels),
                "between_within": between_within_ratio(vectors, labels),
                "residual_norm": residual_norm(vectors),
                "top2_variance": top_variance_fraction(vectors, 2),
            }
        )
    return pd.DataFrame(rows)
