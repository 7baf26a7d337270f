"""Figures of a sensitivity run: the (block x tensor kind) grid of KL removed, and KL against file size for greedy
recipes and uniform quantization. Each is one description (:class:`MatrixFigure`, :class:`LineFigure`) drawn as
plotly and as PNG; nothing is computed here.

Example:
    >>> kl_removed_grid(parts, title="KL removed").png().savefig("grid.png")
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .line_figure import Line, LineFigure, Panel
from .matrix_figure import MatrixFigure

_COLORS = {"uniform": "#4e79a7", "recipe": "#e15759"}


def kl_removed_grid(parts: pd.DataFrame, kinds: list[str], *, title: str) -> MatrixFigure:
    """``parts`` (``block`` (NA: the embedding, not drawn: its title says it), ``kind``, ``share_removed``) as a
    grid: one row per block, one column per kind in ``kinds``; a part that is not in the model is undefined."""
    blocks = sorted(int(b) for b in parts["block"].dropna().unique())
    rows = [str(b) for b in blocks]
    grid = np.full((len(rows), len(kinds)), np.nan)
    for _, row in parts[parts["block"].notna()].iterrows():
        if row["kind"] in kinds:
            grid[rows.index(str(int(row["block"]))), kinds.index(row["kind"])] = row["share_removed"]
    return MatrixFigure(
        title,
        {"share of the KL removed": grid},
        rows,
        [],
        undefined_note="gray: no such part",
        columns=kinds,
        x_title="tensor kind",
        y_title="block",
        value_title="share removed",
    )


def size_curve(curve: pd.DataFrame, *, title: str) -> LineFigure:
    """KL to the reference against size relative to uniform quantization (``curve``: ``method``, ``label``,
    ``relative_size``, ``kl``), one line per method."""
    lines = []
    for method, rows in curve.groupby("method", sort=False):
        rows = rows.sort_values("relative_size", kind="stable")
        hover = [f"{label}: KL {kl:.4g}" for label, kl in zip(rows["label"], rows["kl"])]
        lines.append(
            Line(str(method), list(rows["relative_size"]), list(rows["kl"]), _COLORS.get(method, "#888"), hover)
        )
    panel = Panel(
        "",
        lines,
        x_title="size relative to the uniform base",
        y_title="mean KL(reference || model), nats",
        log_y=True,
        categories=False,
    )
    return LineFigure(title, [panel], height=440)
