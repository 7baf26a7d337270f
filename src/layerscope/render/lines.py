"""Interactive line plots of per-layer numbers, one line per model (plotly)."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from .palette import color_map


def layer_lines_figure(table: pd.DataFrame, columns: dict[str, str], *, title: str) -> go.Figure:
    """One panel per column of ``table`` (``model, layer, <columns>``) against layer; ``columns`` maps name -> label.

    Example:
        >>> layer_lines_figure(norms, {"residual_norm": "mean residual norm"}, title="scale")
    """
    fig = make_subplots(rows=1, cols=len(columns), subplot_titles=list(columns.values()))
    colors = color_map(list(table["model"]))
    for col, name in enumerate(columns, start=1):
        for model, rows in table.groupby("model", sort=False):
            fig.add_trace(
                go.Scatter(
                    x=list(rows["layer"].astype(str)),
                    y=list(rows[name]),
                    name=str(model),
                    legendgroup=str(model),
                    showlegend=col == 1,
                    mode="lines+markers",
                    line=dict(color=colors[model]),
                ),
                row=1,
                col=col,
            )
        fig.update_xaxes(title_text="layer", type="category", row=1, col=col)
    fig.update_layout(title=dict(text=title, x=0.5), template="plotly_white", height=420)
    return fig
