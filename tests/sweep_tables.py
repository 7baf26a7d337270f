"""Reading a sweep's CSV tables back and comparing them cell by cell as written."""

from __future__ import annotations

from pathlib import Path

import pandas as pd


def read_table(path: Path, **options) -> pd.DataFrame:
    """A CSV table as written: empty cells stay empty, and only ``\\n`` ends a row (a token decoded to a bare
    ``\\r`` is written unquoted inside its cell)."""
    return pd.read_csv(path, keep_default_na=False, lineterminator="\n", **options)


def same_table(a: pd.DataFrame, b: pd.DataFrame) -> None:
    """Equal tables, cell by cell as written: text and integers exactly, fractions to float32 rounding (the
    processes' thread counts differ)."""
    a, b = a.astype(str).reset_index(drop=True), b.astype(str).reset_index(drop=True)
    assert list(a.columns) == list(b.columns) and len(a) == len(b)
    for column in a.columns:
        left, right = a[column], b[column]
        if left.equals(right):
            continue
        numbers = pd.to_numeric(left, errors="coerce"), pd.to_numeric(right, errors="coerce")
        assert (
            numbers[0].notna().equals(numbers[1].notna())
            and (left[numbers[0].isna()] == right[numbers[1].isna()]).all()
        ), column
        assert ((numbers[0] - numbers[1]).abs() <= 1e-7 + 1e-5 * numbers[1].abs()).fillna(True).all(), column
