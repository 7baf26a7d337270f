"""The accuracy table's bootstrap intervals: against a direct numpy computation, and their coverage."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from layerscope.analysis.accuracy import accuracy_table, bootstrap_ci


def test_bootstrap_equals_a_direct_numpy_computation():
    correct = np.random.default_rng(1).random(57) < 0.4
    rng = np.random.default_rng(11)
    means = np.array([correct[rng.integers(0, 57, size=57)].mean() for _ in range(500)])
    want = np.quantile(means, [0.025, 0.975])
    assert bootstrap_ci(correct, seed=11, samples=500) == pytest.approx(tuple(want))
    assert bootstrap_ci([], seed=0) != bootstrap_ci([], seed=0)  # NaN, NaN
    assert bootstrap_ci([True] * 9, seed=0) == (1.0, 1.0)


def test_bootstrap_intervals_cover_the_true_accuracy():
    rng = np.random.default_rng(0)
    p, n, trials = 0.3, 120, 300
    covered = 0
    for k in range(trials):
        low, high = bootstrap_ci(rng.random(n) < p, seed=k, samples=400)
        covered += low <= p <= high
    # A 95% interval: the count of covering trials is Binomial(300, ~0.95); percentile intervals run a bit short.
    assert 0.88 <= covered / trials <= 0.99


def test_the_table_carries_intervals_and_chance():
    rng = np.random.default_rng(2)
    examples = pd.DataFrame(
        {
            "config": ["baseline"] * 40 + ["drop 1"] * 40,
            "removed_layers": [""] * 40 + ["1"] * 40,
            "group": ["a", "b"] * 40,
            "correct": rng.random(80) < 0.6,
            "scoring": "answer",
            "p_first": rng.random(80),
            "p_answer": rng.random(80),
        }
    )
    table = accuracy_table(examples, ["baseline", "drop 1"], ["a", "b"], chance=0.25, seed=3)
    assert list(table.columns[:9]) == [
        "config",
        "removed_layers",
        "accuracy",
        "n",
        "correct",
        "delta",
        "ci_low",
        "ci_high",
        "chance",
    ]
    for config, row in zip(["baseline", "drop 1"], table.itertuples()):
        part = examples[examples["config"] == config]
        assert (row.ci_low, row.ci_high) == bootstrap_ci(part["correct"].to_numpy(), seed=3)
        assert row.ci_low <= row.accuracy <= row.ci_high
        assert row.mean_p_answer == pytest.approx(part["p_answer"].mean())
    assert table["chance"].tolist() == [0.25, 0.25] and table["scoring"].tolist() == ["answer", "answer"]
