"""Per-layer numbers for what seed 002 eyeballed: separation, scale, and linearization.

Example:
    >>> table = layer_metrics(array, labels, ["embed", "0", "1"], depths=[0, 1, 2], n_blocks=2)  # (layer, item, d)
    >>> list(table.columns)
    ['layer', 'depth', 'relative_depth', 'silhouette', 'between_within', 'residual_norm', 'top2_variance']

Models of different depths are compared on *relative depth*, :func:`relative_depth`: ``depth / n_blocks``,
so 0 is ``embed``, ``(k + 1) / n_blocks`` is block ``k``, 1 is the last block and ``(n_blocks + 1) / n_blocks``
(just past 1) is the final ``norm``. :func:`align_layers` lines up the layers of several models on it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from .pca import fit_pca
from .separation import between_within_ratio, silhouette

_ROWS = 4096


def relative_depth(depth: int, n_blocks: int) -> float:
    """``depth / n_blocks``: 0 for ``embed`` (depth 0), 1 for the last block (depth ``n_blocks``).

    ``depth`` is the column ``depth`` of every table (``k + 1`` for block ``k``, ``n_blocks + 1`` for ``norm``,
    which therefore lies at ``1 + 1 / n_blocks``).

    Example:
        >>> relative_depth(0, 18), relative_depth(6, 18), relative_depth(18, 18)
        (0.0, 0.3333333333333333, 1.0)
    """
    if n_blocks < 1:
        raise ValueError(f"n_blocks must be at least 1, not {n_blocks}")
    return depth / n_blocks


def align_layers(
    positions: Mapping[str, Sequence[tuple[str, float]]], *, fill: bool = False
) -> tuple[list[float], dict[str, list]]:
    """Rows of layers aligned on relative depth, for models of different depths side by side.

    ``positions`` maps each model to its layers as ``(name, relative_depth)``, shallowest first. The rows are
    the layers of the model with the most layers (the first such model); their relative depths are returned.
    Every other model's layers are placed in rows in order, one layer per row at most, minimising the summed
    distance between a layer's relative depth and its row's (so a layer lands in the row nearest to it
    whenever that keeps the order); rows left without a layer of that model hold None.

    Example:
        >>> rows, placed = align_layers({"a": [("embed", 0), ("0", 0.5), ("1", 1)], "b": [("embed", 0), ("0", 1)]})
        >>> rows, placed["b"]
        ([0.0, 0.5, 1.0], ['embed', None, '0'])
        >>> align_layers({"a": [("embed", 0), ("0", 0.5), ("1", 1)], "b": [("embed", 0), ("0", 1)]}, fill=True)[1]["b"]
        ['embed', 'embed', '0']
    """
    models = list(positions)
    if not models:
        return [], {}
    reference = max(models, key=lambda m: len(positions[m]))  # max keeps the first of equal lengths
    rows = [float(d) for _, d in positions[reference]]
    placed = {}
    for model in models:
        layers = list(positions[model])
        placed[model] = [name for name, _ in layers] if model == reference else _match(layers, rows)
        if fill:
            placed[model] = _fill(placed[model], rows, dict((name, float(d)) for name, d in layers))
    return rows, placed


def _fill(placed: list, rows: list[float], depth_of: dict[str, float]) -> list:
    """Each empty row takes the nearer of the layers placed above and below it (above on a tie)."""
    out = list(placed)
    for j, name in enumerate(placed):
        if name is not None:
            continue
        above = next((placed[k] for k in range(j - 1, -1, -1) if placed[k] is not None), None)
        below = next((placed[k] for k in range(j + 1, len(placed)) if placed[k] is not None), None)
        candidates = [c for c in (above, below) if c is not None]
        if candidates:
            out[j] = min(candidates, key=lambda c: abs(depth_of[c] - rows[j]))
    return out


def relative_positions(table: pd.DataFrame) -> dict[str, list[tuple[str, float]]] | None:
    """Each model's layers as ``(name, relative_depth)``, shallowest first, when the models' depths differ.

    ``table`` has the columns ``model, layer, relative_depth`` (any number of rows per layer). None when it
    has no ``relative_depth`` column, one model, or every model at the same relative depths (then the layer
    names line the models up).
    """
    if "relative_depth" not in table.columns or table["model"].nunique() < 2:
        return None
    first = table.drop_duplicates(["model", "layer"])
    positions = {
        str(model): [
            (str(n), float(d))
            for n, d in rows.sort_values("relative_depth", kind="stable")[["layer", "relative_depth"]].itertuples(
                index=False
            )
        ]
        for model, rows in first.groupby("model", sort=False)
    }
    shapes = {tuple(positions[m]) for m in positions}
    return positions if len(shapes) > 1 else None


def _match(layers: list[tuple[str, float]], rows: list[float]) -> list:
    """An order-keeping assignment of ``layers`` (no more than ``rows``) to rows, least total distance."""
    n, m = len(layers), len(rows)
    inf = float("inf")
    # cost[i][j]: the best total distance with the first i layers placed in the first j rows
    cost = [[0.0] * (m + 1)] + [[inf] * (m + 1) for _ in range(n)]
    for i in range(1, n + 1):
        for j in range(i, m + 1):
            cost[i][j] = min(cost[i][j - 1], cost[i - 1][j - 1] + abs(float(layers[i - 1][1]) - rows[j - 1]))
    out: list = [None] * m
    i, j = n, m
    while i > 0:
        if cost[i][j] == cost[i][j - 1] and j > i:
            j -= 1
        else:
            out[j - 1] = layers[i - 1][0]
            i, j = i - 1, j - 1
    return out


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
    array: np.ndarray,
    labels: Sequence,
    layer_names: Sequence[str],
    depths: Sequence[int] | None = None,
    n_blocks: int | None = None,
) -> pd.DataFrame:
    """One row per layer of ``array`` ``(layer, item, d)``: silhouette, between/within ratio, norm, top-2 variance.

    ``layer_names`` fill the column ``layer`` (``embed``, ``0``, ...); ``depths``, when given, the column
    ``depth`` (0 = embed, ``k + 1`` = block ``k``, ``n_blocks + 1`` = norm); with ``n_blocks`` (the model's
    number of blocks) too, the column ``relative_depth`` (:func:`relative_depth`: 0 = embed, 1 = last block).
    """
    rows = []
    for slot, (name, vectors) in enumerate(zip(layer_names, array)):
        vectors = np.asarray(vectors, dtype=np.float64)
        rows.append(
            {
                "layer": name,
                **({"depth": int(depths[slot])} if depths is not None else {}),
                **(
                    {"relative_depth": relative_depth(int(depths[slot]), n_blocks)}
                    if depths is not None and n_blocks is not None
                    else {}
                ),
                "silhouette": silhouette(vectors, labels),
                "between_within": between_within_ratio(vectors, labels),
                "residual_norm": residual_norm(vectors),
                "top2_variance": top_variance_fraction(vectors, 2),
            }
        )
    return pd.DataFrame(rows)
