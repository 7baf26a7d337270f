"""Echo rates and the word grid against a plain loop over a hand-made table."""

from __future__ import annotations

import math

import pandas as pd

from layerscope.analysis.echo import echo_rates, word_grid


def _table() -> pd.DataFrame:
    rows = []
    for model, bos_id in (("a", 2), ("b", None)):
        for bos in ("without", "with"):
            for i, word in enumerate(["x", "y", "z"]):
                applicable = bos == "without" or bos_id is not None
                echo = applicable and (i < 2 if model == "a" and bos == "without" else i == 0)
                rows.append(
                    {
                        "model": model,
                        "set": "s",
                        "word": word,
                        "bos": bos,
                        "applicable": applicable,
                        "single_token": i != 2,
                        "top1": word if echo else "," if applicable else None,
                        "echo": echo if applicable else None,
                        "p_echo": 0.1 * (i + 1) if applicable else None,
                    }
                )
    return pd.DataFrame(rows)


def test_echo_rates_match_a_loop():
    table = _table()
    rates = echo_rates(table).set_index(["model", "bos"])
    for (model, bos), group in table.groupby(["model", "bos"]):
        row = rates.loc[(model, bos)]
        if group["applicable"].all():
            hits = sum(1 for e in group["echo"] if e)
            assert row["n_echo"] == hits and math.isclose(row["echo_rate"], hits / len(group))
            assert math.isclose(row["mean_p_echo"], sum(group["p_echo"]) / len(group))
        else:
            assert not row["applicable"] and math.isnan(row["echo_rate"])
    assert list(echo_rates(table)["model"]) == ["a", "a", "b", "b"]


def test_word_grid_rows_are_words_columns_models():
    grid = word_grid(_table(), "without")
    assert list(grid.columns) == ["a", "b"] and list(grid.index) == [("s", "x"), ("s", "y"), ("s", "z")]
    assert grid.at[("s", "y"), "a"] == "y" and grid.at[("s", "y"), "b"] == ","
    assert word_grid(_table(), "with")[["b"]].isna().all().all()
