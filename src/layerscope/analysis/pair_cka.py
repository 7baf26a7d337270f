"""Linear and debiased CKA between every layer of one model and every layer of another, on the same inputs.

Linear CKA (Kornblith et al. 2019) and its debiased form (the unbiased HSIC estimator of Song et al. 2012;
Nguyen et al. 2021), which removes CKA's upward bias when the inputs are few next to the dimensions. Two
models of any depths are lined up by relative depth (``depth / n_blocks``): ``aligned`` is the mean CKA along
that diagonal, ``mean_best`` the mean over A's layers of their best match in B; both are 1 for a model
against itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from .cka import cka_chance, cross_cka, enough_positions

if TYPE_CHECKING:
    from ..capture.read_positions import Capture


def nearest_layers(source: Sequence[float], target: Sequence[float]) -> list[int]:
    """For each relative depth in ``source`` ``(La,)``, the index of the nearest one in ``target`` ``(Lb,)`` (the
    first on a tie): ``La`` indices into ``target``."""
    target = np.asarray(target, dtype=np.float64)
    return [int(np.argmin(np.abs(target - s))) for s in source]


@dataclass
class PairCKA:
    """Every layer of ``a`` against every layer of ``b``.

    Attributes:
        a, b: the two models' display names.
        layers_a, layers_b: their layer names, ``La`` and ``Lb`` of them.
        linear, debiased: ``(La, Lb)`` float64 linear and debiased CKA (NaN where a layer has no spread).
        relative_a, relative_b: ``(La,)`` and ``(Lb,)`` relative depths (``depth / n_blocks``).
        n_items: the read positions (inputs) compared; 0 when unknown.
        width: the narrower of the two models' widths; 0 when unknown.
    """

    a: str
    b: str
    layers_a: list[str]
    layers_b: list[str]
    linear: np.ndarray
    debiased: np.ndarray
    relative_a: list[float]
    relative_b: list[float]
    n_items: int = 0
    width: int = 0

    @property
    def chance(self) -> float:
        """The CKA two unrelated representations would show at these positions and width (see
        :func:`~layerscope.analysis.cka.cka_chance`)."""
        return cka_chance(self.n_items, self.width)

    @property
    def sure(self) -> bool:
        """Whether there are enough read positions for the width to state best matches
        (:func:`~layerscope.analysis.cka.enough_positions`)."""
        return enough_positions(self.n_items, self.width)

    def best(self, debiased: bool = False) -> list[int | None]:
        """``(La,)``: for each layer of ``a``, the index of its best-matching layer of ``b`` (None when its row
        is all NaN)."""
        matrix = self.debiased if debiased else self.linear
        return [None if np.isnan(row).all() else int(np.nanargmax(row)) for row in matrix]

    def aligned(self, debiased: bool = False) -> float:
        """Mean CKA along the relative-depth diagonal (NaN cells left out)."""
        matrix = self.debiased if debiased else self.linear
        cols = nearest_layers(self.relative_a, self.relative_b)
        return _nanmean([matrix[i, j] for i, j in enumerate(cols)])

    def mean_best(self, debiased: bool = False) -> float:
        """Mean over the layers of ``a`` of the CKA of their best match in ``b``."""
        matrix = self.debiased if debiased else self.linear
        return _nanmean([np.nanmax(row) for row in matrix if not np.isnan(row).all()])


def _nanmean(values) -> float:
    values = np.asarray(values, dtype=np.float64)
    values = values[~np.isnan(values)]
    return float(values.mean()) if len(values) else float("nan")


def pair_cka(a: Capture, b: Capture) -> PairCKA:
    """Linear and debiased CKA between every layer of ``a`` and every layer of ``b`` over the same inputs.

    ``a.residuals`` is ``(La, item, d_a)`` and ``b.residuals`` ``(Lb, item, d_b)``: the widths may differ, the
    items (inputs, in order) may not. Any object with ``name``, ``layers``, ``residuals`` and
    ``relative_depths`` will do (a :class:`~layerscope.capture.read_positions.Capture`).
    """
    same = a is b
    return PairCKA(
        a=a.name,
        b=b.name,
        layers_a=a.layers,
        layers_b=b.layers,
        linear=cross_cka(a.residuals, a.residuals if same else b.residuals),
        debiased=cross_cka(a.residuals, a.residuals if same else b.residuals, debiased=True),
        relative_a=a.relative_depths,
        relative_b=b.relative_depths,
        n_items=int(a.residuals.shape[1]),
        width=int(min(a.residuals.shape[-1], b.residuals.shape[-1])),
    )
