"""How closely one method ranks cells as another does: Spearman's rank correlation with a bootstrap interval.

Attribution patching (:mod:`layerscope.capture.attribution`) is a fast first-order estimate; what matters of it
is whether it puts the cells in exact patching's order. ``rho`` is Spearman's rank correlation of the two
methods' values over the same cells (pandas' ``DataFrame.corr(method="spearman")``: Pearson's correlation of
the ranks, ties given their average rank). Its interval resamples the cells with replacement
(``numpy.random.default_rng(seed).integers(0, n, (n, samples))``, one resample per column, as
:func:`~layerscope.analysis.accuracy.bootstrap_ci` resamples items) and takes the 2.5% and 97.5% quantiles of the
resampled rhos; under :data:`MIN_CELLS_FOR_CI` cells there is no interval ("too few cells").

When exact patching of every cell would cost too much, :func:`sample_cells` draws a seeded random sample of
the cells (without replacement, in their table order) and both methods are compared there.

Example:
    >>> agreement = rank_agreement([1.0, 2.0, 3.0, 5.0], [0.1, 0.3, 0.2, 0.9], of_cells=4)
    >>> round(agreement.rho, 2), agreement.sentence()
    (0.8, 'Spearman rho 0.80 over all 4 cells (too few cells for an interval)')
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .accuracy import BOOTSTRAP_SAMPLES, CI_LEVEL

#: fewer cells than this give no interval ("too few cells")
MIN_CELLS_FOR_CI = 10


@dataclass(frozen=True)
class RankAgreement:
    """Spearman's rho of two methods over ``n_cells`` cells (a sample of ``of_cells`` when fewer).

    Attributes:
        rho: the rank correlation (NaN under 2 cells or when either method gives every cell one value).
        ci_low, ci_high: its bootstrap 95% interval; NaN under :data:`MIN_CELLS_FOR_CI` cells.
        n_cells: the cells compared; of_cells: the cells they were drawn from.
        seed: the seed of the sample (when sampled) and of the resamples.
    """

    rho: float
    ci_low: float
    ci_high: float
    n_cells: int
    of_cells: int
    seed: int = 0

    @property
    def sampled(self) -> bool:
        return self.n_cells < self.of_cells

    def record(self) -> dict:
        """The numbers for ``run.json`` (NaN as None)."""

        def number(x: float) -> float | None:
            return None if math.isnan(x) else float(x)

        return {
            "rho": number(self.rho),
            "ci_low": number(self.ci_low),
            "ci_high": number(self.ci_high),
            "n_cells": self.n_cells,
            "of_cells": self.of_cells,
            "seed": self.seed,
        }

    @classmethod
    def from_record(cls, data: dict) -> RankAgreement:
        def number(x) -> float:
            return float("nan") if x is None else float(x)

        return cls(
            rho=number(data.get("rho")),
            ci_low=number(data.get("ci_low")),
            ci_high=number(data.get("ci_high")),
            n_cells=int(data.get("n_cells", 0)),
            of_cells=int(data.get("of_cells", 0)),
            seed=int(data.get("seed", 0)),
        )

    def sentence(self) -> str:
        """``"Spearman rho 0.93 (95% interval 0.88 to 0.96) over 100 of 190 cells (a random sample, seed 0)"``."""
        if math.isnan(self.rho):
            return f"no rank correlation over {self.n_cells} cells (too few cells, or one value everywhere)"
        over = (
            f"over {self.n_cells} of {self.of_cells} cells (a random sample, seed {self.seed})"
            if self.sampled
            else f"over all {self.n_cells} cells"
        )
        if math.isnan(self.ci_low):
            return f"Spearman rho {self.rho:.2f} {over} (too few cells for an interval)"
        return f"Spearman rho {self.rho:.2f} (95% interval {self.ci_low:.2f} to {self.ci_high:.2f}) {over}"


def sample_cells(n: int, size: int, seed: int) -> np.ndarray:
    """``(min(n, size),)`` sorted indices of ``size`` cells of ``n`` drawn without replacement with
    ``numpy.random.default_rng(seed)``; every index when ``n <= size``."""
    if n <= size:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=size, replace=False))


def spearman(a, b) -> float:
    """Spearman's rank correlation of ``a`` and ``b`` (same length); NaN under 2 values or for a constant one."""
    frame = pd.DataFrame({"a": np.asarray(a, dtype=np.float64), "b": np.asarray(b, dtype=np.float64)})
    if len(frame) < 2:
        return float("nan")
    return float(frame.corr(method="spearman").iloc[0, 1])


def spearman_interval(
    a, b, *, seed: int = 0, samples: int = BOOTSTRAP_SAMPLES, level: float = CI_LEVEL
) -> tuple[float, float]:
    """Percentile bootstrap interval of :func:`spearman` (cells resampled with replacement); resamples whose
    values are all one (no rank order) are left out."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    index = np.random.default_rng(seed).integers(0, a.size, size=(a.size, samples))  # (cells, samples)
    ranks_a = pd.DataFrame(a[index]).rank().to_numpy()  # average ranks within each resample (column)
    ranks_b = pd.DataFrame(b[index]).rank().to_numpy()
    ranks_a, ranks_b = ranks_a - ranks_a.mean(axis=0), ranks_b - ranks_b.mean(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        rhos = (ranks_a * ranks_b).sum(axis=0) / np.sqrt((ranks_a**2).sum(axis=0) * (ranks_b**2).sum(axis=0))
    rhos = rhos[np.isfinite(rhos)]
    if not rhos.size:
        return float("nan"), float("nan")
    low, high = np.quantile(rhos, [(1 - level) / 2, (1 + level) / 2])
    return float(low), float(high)


def rank_agreement(estimate, exact, *, of_cells: int | None = None, seed: int = 0) -> RankAgreement:
    """:class:`RankAgreement` of ``estimate`` and ``exact`` (``(cells,)`` each, the same cells);
    ``of_cells``: how many cells they were sampled from (default: these)."""
    estimate, exact = np.asarray(estimate, dtype=np.float64), np.asarray(exact, dtype=np.float64)
    n = int(estimate.size)
    rho = spearman(estimate, exact)
    low = high = float("nan")
    if n >= MIN_CELLS_FOR_CI and not math.isnan(rho):
        low, high = spearman_interval(estimate, exact, seed=seed)
    return RankAgreement(rho, low, high, n, n if of_cells is None else int(of_cells), seed)
