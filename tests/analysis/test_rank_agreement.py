"""Spearman's rank correlation and its bootstrap interval, against scipy computed independently."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import spearmanr

from layerscope.analysis.rank_agreement import (
    MIN_CELLS_FOR_CI,
    RankAgreement,
    rank_agreement,
    sample_cells,
    spearman,
    spearman_interval,
)


def test_spearman_equals_scipy_with_ties():
    rng = np.random.default_rng(3)
    a = rng.integers(0, 6, 40).astype(float)  # many ties
    b = a + rng.normal(size=40)
    assert spearman(a, b) == pytest.approx(spearmanr(a, b).statistic, abs=1e-12)
    assert math.isnan(spearman([1.0, 1.0, 1.0], [1.0, 2.0, 3.0])) and math.isnan(spearman([1.0], [2.0]))


def test_the_interval_is_the_quantiles_of_scipys_rho_over_the_documented_resamples():
    rng = np.random.default_rng(4)
    a = rng.normal(size=30)
    b = a + rng.normal(size=30)
    low, high = spearman_interval(a, b, seed=7, samples=300)
    index = np.random.default_rng(7).integers(0, 30, size=(30, 300))
    rhos = [spearmanr(a[index[:, j]], b[index[:, j]]).statistic for j in range(300)]
    assert (low, high) == pytest.approx(tuple(np.quantile(rhos, [0.025, 0.975])), abs=1e-12)
    assert low < spearman(a, b) < high


def test_too_few_cells_give_no_interval_and_say_so():
    few = rank_agreement(np.arange(MIN_CELLS_FOR_CI - 1.0), np.arange(MIN_CELLS_FOR_CI - 1.0) ** 2)
    assert few.rho == pytest.approx(1.0) and math.isnan(few.ci_low)
    assert few.sentence() == f"Spearman rho 1.00 over all {MIN_CELLS_FOR_CI - 1} cells (too few cells for an interval)"
    enough = rank_agreement(np.arange(20.0), np.arange(20.0)[::-1] ** 3, of_cells=50, seed=2)
    assert enough.sentence() == (
        "Spearman rho -1.00 (95% interval -1.00 to -1.00) over 20 of 50 cells (a random sample, seed 2)"
    )
    assert RankAgreement.from_record(enough.record()) == enough
    assert RankAgreement.from_record(rank_agreement([1.0], [2.0]).record()).sentence().startswith("no rank correlation")


def test_the_sample_is_reproducible_and_without_repeats():
    first = sample_cells(500, 40, seed=5)
    assert np.array_equal(first, sample_cells(500, 40, seed=5))
    assert len(set(first.tolist())) == 40 and np.all(np.diff(first) > 0) and first.max() < 500
    assert not np.array_equal(first, sample_cells(500, 40, seed=6))
    assert np.array_equal(sample_cells(30, 40, seed=5), np.arange(30))
