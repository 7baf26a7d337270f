"""Summaries of an echo table (pandas only): echo rates per model and BOS setting, the word-by-model grid.

The echo table has one row per model, word and BOS setting, with at least the columns
``model, set, word, bos, applicable, single_token, top1, echo, p_echo``.
"""

from __future__ import annotations

import pandas as pd

BOS_SETTINGS = ("without", "with")


def echo_rates(table: pd.DataFrame) -> pd.DataFrame:
    """One row per model and BOS setting: ``model, bos, applicable, n_words, n_echo, echo_rate, mean_p_echo``.

    ``echo_rate`` is the share of words whose most probable next token is the word's own (first) token.
    A BOS setting that does not apply (a model without a BOS token) has ``applicable=False`` and NaN rates.

    Example:
        >>> echo_rates(result.table).query("bos == 'without'")[["model", "echo_rate"]]
    """
    rows = []
    for (model, bos), group in table.groupby(["model", "bos"], sort=False):
        applicable = bool(group["applicable"].all())
        n_echo = int(group["echo"].fillna(False).astype(bool).sum()) if applicable else 0
        rows.append(
            {
                "model": model,
                "bos": bos,
                "applicable": applicable,
                "n_words": len(group),
                "n_echo": n_echo,
                "echo_rate": n_echo / len(group) if applicable and len(group) else float("nan"),
                "mean_p_echo": float(group["p_echo"].mean()) if applicable else float("nan"),
            }
        )
    return pd.DataFrame(rows, columns=["model", "bos", "applicable", "n_words", "n_echo", "echo_rate", "mean_p_echo"])


def word_grid(table: pd.DataFrame, bos: str, column: str = "top1") -> pd.DataFrame:
    """Words as rows (in table order), models as columns, ``column`` as the cell, for one BOS setting.

    The index is ``(set, word)``; a model/word pair missing from the table is NaN.
    """
    part = table[table["bos"] == bos]
    models = list(dict.fromkeys(part["model"]))
    words = list(dict.fromkeys(zip(part["set"], part["word"])))
    keyed = part.drop_duplicates(["set", "word", "model"]).set_index(["set", "word", "model"])[column]
    grid = keyed.unstack("model")
    return grid.reindex(index=pd.MultiIndex.from_tuples(words, names=["set", "word"]), columns=models)
