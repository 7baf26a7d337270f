"""Patching cells over a set of pairs (numpy only): the mean per cell, its normalized share and bootstrap intervals.

``normalized = (patched - corrupt) / (clean - corrupt)``, of the means over pairs: 0 is the corrupt run's value,
1 the clean run's (in both directions). Taking the ratio of the means, not the mean of per-pair ratios, keeps a
pair whose clean and corrupt values nearly agree from dominating. Intervals resample the pairs with
replacement, as :func:`layerscope.analysis.accuracy.bootstrap_ci` does (the same seed, the same resamples
for every cell), and take the 2.5% and 97.5% quantiles of the resampled normalized value.

Example:
    >>> table = summarize(np.array([[0.5], [0.7]]), np.array([1.0, 1.0]), np.array([0.0, 0.0]))
    >>> table["normalized"].tolist()
    [0.6]
"""

from __future__ import annotations

import numpy as np

from .accuracy import BOOTSTRAP_SAMPLES, CI_LEVEL

#: fewer pairs than this give no interval and the findings say "too few pairs"
MIN_PAIRS_FOR_CI = 5


def normalized(patched, clean, corrupt):
    """``(patched - corrupt) / (clean - corrupt)``; NaN where clean equals corrupt."""
    patched, clean, corrupt = (np.asarray(a, dtype=np.float64) for a in (patched, clean, corrupt))
    gap = clean - corrupt
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(gap != 0, (patched - corrupt) / np.where(gap != 0, gap, 1.0), np.nan)


def summarize(
    values: np.ndarray,
    clean: np.ndarray,
    corrupt: np.ndarray,
    *,
    seed: int = 0,
    samples: int = BOOTSTRAP_SAMPLES,
    level: float = CI_LEVEL,
) -> dict[str, np.ndarray]:
    """Per cell: ``value`` (the mean over pairs), ``normalized`` and its interval ``ci_low``/``ci_high``.

    Args:
        values: ``(pairs, cells)`` the metric with each cell patched.
        clean, corrupt: ``(pairs,)`` the metric of the unpatched clean and corrupt runs.

    Returns:
        ``{"value", "normalized", "ci_low", "ci_high"}``, each ``(cells,)``; the interval is NaN with fewer
        than :data:`MIN_PAIRS_FOR_CI` pairs.
    """
    values = np.asarray(values, dtype=np.float64)
    clean, corrupt = np.asarray(clean, dtype=np.float64), np.asarray(corrupt, dtype=np.float64)
    n_pairs, n_cells = values.shape
    mean = values.mean(axis=0)
    share = normalized(mean, clean.mean(), corrupt.mean())
    low = high = np.full(n_cells, np.nan)
    if n_pairs >= MIN_PAIRS_FOR_CI:
        index = np.random.default_rng(seed).integers(0, n_pairs, size=(samples, n_pairs))
        counts = np.zeros((samples, n_pairs))
        np.add.at(counts, (np.arange(samples)[:, None], index), 1.0)
        counts /= n_pairs  # (samples, pairs): each resample's weights
        resampled = normalized(counts @ values, (counts @ clean)[:, None], (counts @ corrupt)[:, None])
        low, high = np.nanquantile(resampled, [(1 - level) / 2, (1 + level) / 2], axis=0)
    return {"value": mean, "normalized": share, "ci_low": low, "ci_high": high}
