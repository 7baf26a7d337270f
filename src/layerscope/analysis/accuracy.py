"""Accuracy tables from per-item results (pandas and numpy only), with bootstrap confidence intervals."""

from __future__ import annotations

import numpy as np
import pandas as pd

BOOTSTRAP_SAMPLES = 2000
CI_LEVEL = 0.95


def bootstrap_ci(
    correct, *, seed: int = 0, samples: int = BOOTSTRAP_SAMPLES, level: float = CI_LEVEL
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of ``correct`` (items resampled with replacement).

    ``samples`` resamples of the items are drawn with ``numpy.random.default_rng(seed).integers(0, n,
    (samples, n))``; the interval is the ``(1 - level) / 2`` and ``(1 + level) / 2`` quantiles of their means
    (numpy's default linear interpolation). The same seed gives every configuration the same resamples
    (paired intervals). NaN for no items.

    Example:
        >>> bootstrap_ci([True] * 8 + [False] * 2, seed=0)
        (0.5, 1.0)
    """
    values = np.asarray(correct, dtype=np.float64)
    if values.size == 0:
        return float("nan"), float("nan")
    index = np.random.default_rng(seed).integers(0, values.size, size=(samples, values.size))
    means = values[index].mean(axis=1)
    low, high = np.quantile(means, [(1 - level) / 2, (1 + level) / 2])
    return float(low), float(high)


def accuracy_table(
    examples: pd.DataFrame,
    configs: list[str],
    groups: list[str],
    *,
    chance: float | None = None,
    seed: int = 0,
    samples: int = BOOTSTRAP_SAMPLES,
) -> pd.DataFrame:
    """One row per configuration: accuracy overall and per group, and the change against the baseline.

    Args:
        examples: one row per item and configuration with columns ``config, removed_layers, group, correct``
            (and ``part``: ``block``, ``attn``, ``mlp``, or ``none`` for the baseline; ``scoring``, ``p_first``,
            ``p_answer`` when the engine gave them).
        configs: configuration names in display order; the one named ``"baseline"`` is the reference.
        groups: groups to break down (e.g. operations), in column order.
        chance: the accuracy of a uniform guess (the task's), written in every row (NaN when unknown).
        seed, samples: of the bootstrap (:func:`bootstrap_ci`), the same resamples for every configuration.

    Returns:
        columns ``config, part, removed_layers, accuracy, n, correct, delta, ci_low, ci_high, chance`` (``part``
        when the examples have it) then ``scoring``, ``mean_p_first``, ``mean_p_answer`` (those the examples
        have), then ``accuracy[<group>]`` and ``n[<group>]`` per group; ``delta`` is the accuracy minus the
        baseline's (NaN without a baseline); ``ci_low``/``ci_high`` the 95% bootstrap interval of the accuracy.

    Example:
        >>> accuracy_table(examples, ["baseline", "drop 4"], ["+", "-"])["accuracy"].tolist()
        [0.91, 0.42]
    """
    rows = []
    for config in configs:
        part = examples[examples["config"] == config]
        low, high = bootstrap_ci(part["correct"].to_numpy(dtype=bool), seed=seed, samples=samples)
        row = {
            "config": config,
            **({"part": part["part"].iloc[0] if len(part) else ""} if "part" in examples.columns else {}),
            "removed_layers": part["removed_layers"].iloc[0] if len(part) else "",
            "accuracy": float(part["correct"].mean()) if len(part) else float("nan"),
            "n": int(len(part)),
            "correct": int(part["correct"].sum()),
            "ci_low": low,
            "ci_high": high,
            "chance": float("nan") if chance is None else float(chance),
        }
        if "scoring" in part.columns:
            row["scoring"] = str(part["scoring"].iloc[0]) if len(part) else ""
        for column in ("p_first", "p_answer"):
            if column in part.columns:
                row[f"mean_{column}"] = float(pd.to_numeric(part[column]).mean()) if len(part) else float("nan")
        for group in groups:
            in_group = part[part["group"] == group]
            row[f"accuracy[{group}]"] = float(in_group["correct"].mean()) if len(in_group) else float("nan")
            row[f"n[{group}]"] = int(len(in_group))
        rows.append(row)
    table = pd.DataFrame(rows)
    base = table.loc[table["config"] == "baseline", "accuracy"]
    table.insert(
        list(table.columns).index("correct") + 1,
        "delta",
        table["accuracy"] - (float(base.iloc[0]) if len(base) else float("nan")),
    )
    return table
