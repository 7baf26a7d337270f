"""Accuracy tables from per-item results (pandas only)."""

from __future__ import annotations

import pandas as pd


def accuracy_table(examples: pd.DataFrame, configs: list[str], groups: list[str]) -> pd.DataFrame:
    """One row per configuration: accuracy overall and per group, and the change against the baseline.

    Args:
        examples: one row per item and configuration with columns ``config, removed_layers, group, correct``
            (and ``part``: ``block``, ``attn``, ``mlp``, or ``none`` for the baseline).
        configs: configuration names in display order; the one named ``"baseline"`` is the reference.
        groups: groups to break down (e.g. operations), in column order.

    Returns:
        columns ``config, part, removed_layers, accuracy, n, correct, delta`` (``part`` when the examples
        have it) then ``accuracy[<group>]`` and
        ``n[<group>]`` per group; ``delta`` is the accuracy minus the baseline's (NaN without a baseline).

    Example:
        >>> accuracy_table(examples, ["baseline", "drop 4"], ["+", "-"])["accuracy"].tolist()
        [0.91, 0.42]
    """
    rows = []
    for config in configs:
        part = examples[examples["config"] == config]
        row = {
            "config": config,
            **({"part": part["part"].iloc[0] if len(part) else ""} if "part" in examples.columns else {}),
            "removed_layers": part["removed_layers"].iloc[0] if len(part) else "",
            "accuracy": float(part["correct"].mean()) if len(part) else float("nan"),
            "n": int(len(part)),
            "correct": int(part["correct"].sum()),
        }
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
