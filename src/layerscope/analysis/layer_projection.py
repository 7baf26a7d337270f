"""Project every layer's vectors with PCA: each on its own basis, or all on one layer's basis.

The layers of a table are named as everywhere (``embed``, ``0``..``n-1``, ``norm``; see
:mod:`layerscope.capture.layer_spec`), and :func:`layer_order` sorts them by depth.

Example:
    >>> coords, ratios = project_layers(array, dims=2, basis_slot=0)   # all layers on the embedding's basis
    >>> coords.shape, ratios.shape
    ((19, 117, 2), (19, 2))
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .pca import fit_pca


def project_layers(array: np.ndarray, dims: int, basis_slot: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Coordinates ``(layer, item, dims)`` and, per layer, the fraction of its variance on each axis ``(layer, dims)``.

    ``basis_slot=None`` fits a PCA per layer (the ratios are the usual explained-variance ratios);
    an index fits one PCA on that layer and projects every layer onto it (the ratio is then the share of
    each layer's own total variance that lies along the fixed axis).
    """
    fixed = None if basis_slot is None else fit_pca(np.asarray(array[basis_slot], dtype=np.float64), dims)
    coords = np.zeros((array.shape[0], array.shape[1], dims))
    ratios = np.zeros((array.shape[0], dims))
    for slot in range(array.shape[0]):
        x = np.asarray(array[slot], dtype=np.float64)
        basis = fixed if fixed is not None else fit_pca(x, dims)
        coords[slot] = basis.transform(x)
        total = x.var(axis=0, ddof=1).sum() if x.shape[0] > 1 else 0.0
        ratios[slot] = coords[slot].var(axis=0, ddof=1) / total if total > 0 else 0.0
    return coords, ratios


def layer_order(table: pd.DataFrame) -> list[str]:
    """The layer names in ``table`` (columns ``layer`` and ``depth``), shallowest first and ``norm`` last.

    Without a ``depth`` column, the order in which the names first appear.
    """
    first = table.drop_duplicates("layer")
    if "depth" not in first:
        return list(first["layer"])
    key = first["depth"].astype(float).where(first["layer"] != "norm", float("inf"))
    return list(first.assign(_order=key).sort_values("_order", kind="stable")["layer"])
