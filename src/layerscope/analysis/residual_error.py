"""Per-layer error of one model's residual stream against a reference's, on the same inputs and positions.

For one model in several formats or precisions (same depth, width and tokenization): per layer the relative
error ``||x - r|| / ||r||`` and the cosine of the residual, averaged over inputs, and the block where the
relative error grows most.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from .similarity import compare as row_metrics

#: the columns of :func:`residual_errors`
ERROR_COLUMNS = ["layer", "depth", "relative_error", "cosine", "min_cosine", "mean_l2", "max_abs_diff"]


def residual_errors(
    reference: np.ndarray, other: np.ndarray, names: Sequence[str], depths: Sequence[int]
) -> pd.DataFrame:
    """Per layer, ``other`` against ``reference``, both ``(item, layer, d)`` over the same inputs.

    Columns: ``layer, depth``, ``relative_error`` (mean over inputs of ``||x - r|| / ||r||``), ``cosine``
    (mean) and ``min_cosine``, ``mean_l2`` (mean ``||x - r||``), ``max_abs_diff`` (over inputs and dimensions).
    """
    rows = []
    for i, (name, depth) in enumerate(zip(names, depths)):
        metrics = row_metrics(reference[:, i], other[:, i])
        norm = np.linalg.norm(np.asarray(reference[:, i], dtype=np.float64), axis=-1)
        relative = metrics["l2"].to_numpy() / np.where(norm > 0, norm, np.nan)
        rows.append(
            {
                "layer": name,
                "depth": depth,
                "relative_error": _nanmean(relative),
                "cosine": float(metrics["cosine"].mean()),
                "min_cosine": float(metrics["cosine"].min()),
                "mean_l2": float(metrics["l2"].mean()),
                "max_abs_diff": float(metrics["max_abs_diff"].max()),
            }
        )
    return pd.DataFrame(rows, columns=ERROR_COLUMNS)


def growth_block(errors: pd.DataFrame) -> tuple[str, float] | None:
    """The block whose output's relative error exceeds its input's by most, and by how much (None: no block
    adds error, e.g. two identical models). ``errors``: one model's rows of :func:`residual_errors`."""
    blocks = errors[errors["layer"].str.fullmatch(r"\d+")]
    if blocks.empty:
        return None
    values = errors.set_index("depth")["relative_error"]
    growth = [(float(values[d] - values[d - 1]), str(layer)) for d, layer in zip(blocks["depth"], blocks["layer"])]
    value, layer = max(growth, key=lambda g: np.nan_to_num(g[0], nan=-np.inf))
    return (layer, value) if value > 0 else None


def _nanmean(values) -> float:
    values = np.asarray(values, dtype=np.float64)
    values = values[~np.isnan(values)]
    return float(values.mean()) if len(values) else float("nan")
