"""Line plots of per-layer numbers, one line per model: one description, drawn as plotly and as PNG."""

from __future__ import annotations

from collections.abc import Collection

import pandas as pd

from .line_figure import Line, LineFigure, Panel
from .palette import color_map


def layer_lines(table: pd.DataFrame, columns: dict[str, str], *, title: str, log: Collection[str] = ()) -> LineFigure:
    """One panel per column of ``table`` (``model, layer, <columns>``) against layer, one line per model;
    ``columns`` maps name -> label, ``log``: the columns drawn on a log axis.

    Example:
        >>> layer_lines(norms, {"residual_norm": "mean residual norm"}, title="scale", log={"residual_norm"}).png()
    """
    colors = color_map(list(table["model"]))
    panels = [
        Panel(
            label,
            [
                Line(str(model), list(rows["layer"].astype(str)), list(rows[name]), colors[model])
                for model, rows in table.groupby("model", sort=False)
            ],
            log_y=name in log,
        )
        for name, label in columns.items()
    ]
    return LineFigure(title, panels)


def layer_lines_figure(table: pd.DataFrame, columns: dict[str, str], *, title: str, log: Collection[str] = ()):
    """:func:`layer_lines` as an interactive plotly figure."""
    return layer_lines(table, columns, title=title, log=log).plotly()
