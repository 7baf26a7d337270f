"""Numbers of a sensitivity run (numpy only): mean KL with a bootstrap interval, and the greedy choice of the parts
kept at higher precision under a byte budget.

Example:
    >>> mean, low, high = mean_interval(kl_per_prompt, seed=0)   # the mean and its bootstrap 95% interval
    >>> greedy_order(np.array([0.5, 0.1, 0.4]), np.array([10, 1, 2]), budget=5)
    [2, 1]
"""

from __future__ import annotations

import numpy as np

#: the fewest prompts an interval is given for
MIN_INTERVAL_ITEMS = 5
BOOTSTRAP_SAMPLES = 1000


def mean_interval(values: np.ndarray, seed: int = 0, level: float = 0.95) -> tuple[float, float, float]:
    """``(mean, low, high)`` of ``values`` ``(item,)``: the mean and its percentile-bootstrap interval over items
    (NaN bounds under :data:`MIN_INTERVAL_ITEMS` items)."""
    values = np.asarray(values, dtype=float)
    mean = float(values.mean())
    if len(values) < MIN_INTERVAL_ITEMS:
        return mean, float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, len(values), size=(BOOTSTRAP_SAMPLES, len(values)))].mean(axis=1)
    tail = (1 - level) / 2
    return mean, float(np.quantile(means, tail)), float(np.quantile(means, 1 - tail))


def kl_divergence(reference_log_probs: np.ndarray, log_probs: np.ndarray) -> np.ndarray:
    """KL(reference || model) ``(item,)`` in nats from log-probabilities ``(item, vocab)``."""
    p = np.exp(reference_log_probs)
    return np.maximum((p * (reference_log_probs - log_probs)).sum(axis=-1), 0.0)


def greedy_order(removed: np.ndarray, extra_bytes: np.ndarray, budget: float | None = None) -> list[int]:
    """The parts kept at higher precision, in the order taken: by KL removed per extra byte, highest first, each
    taken while the bytes taken so far stay within ``budget`` (None: every part that removes KL).

    Args:
        removed: ``(part,)`` KL removed by restoring the part alone (parts that remove none are never taken).
        extra_bytes: ``(part,)`` bytes the part costs at the higher precision beyond the base.
    """
    removed, extra = np.asarray(removed, dtype=float), np.asarray(extra_bytes, dtype=float)
    worth = np.where(extra > 0, removed / np.maximum(extra, 1), np.inf)
    order = [int(i) for i in np.argsort(-worth, kind="stable") if removed[i] > 0]
    taken, spent = [], 0.0
    for i in order:
        if budget is not None and spent + extra[i] > budget:
            continue
        taken.append(i)
        spent += extra[i]
    return taken
