"""Interactive plotly scatter of projected tokens: labelled points, a colour and a line per set."""

from __future__ import annotations

from collections.abc import Collection

import pandas as pd
import plotly.graph_objects as go

from .palette import color_map


def axis_titles(explained_ratio: list[float]) -> list[str]:
    """``["PC1 (34.1%)", "PC2 (12.0%)", ...]``."""
    return [f"PC{i + 1} ({100 * r:.1f}%)" for i, r in enumerate(explained_ratio)]


def projection_figure(
    table: pd.DataFrame,
    explained_ratio: list[float],
    *,
    title: str,
    connect: bool | Collection[str] = True,
) -> go.Figure:
    """A 2-D or 3-D scatter of ``table`` (columns ``set, label, pc1, pc2[, pc3]``).

    Each set gets one colour and one legend entry (a click hides it); points carry their label as
    text; a line joins the points of a set in their order (0 -> 1 -> ... -> 9) when ``connect`` is True
    or names the set (an ordered set: digits, number words, months).
    """
    dims = len(explained_ratio)
    titles = axis_titles(explained_ratio)
    colors = color_map(list(table["set"]))
    fig = go.Figure()
    for set_name, group in table.groupby("set", sort=False):
        joined = connect is True or (not isinstance(connect, bool) and set_name in connect)
        common = dict(
            name=str(set_name),
            mode="markers+text+lines" if joined else "markers+text",
            text=group["label"].astype(str),
            hovertext=[f"{set_name}: {label}" for label in group["label"]],
            hoverinfo="text",
            marker=dict(color=colors[set_name], size=6 if dims == 3 else 9, line=dict(width=0.5, color="white")),
            line=dict(color=colors[set_name], width=2 if dims == 3 else 1.5),
            textposition="top center",
            textfont=dict(size=11, color=colors[set_name]),
        )
        if dims == 3:
            fig.add_trace(go.Scatter3d(x=group["pc1"], y=group["pc2"], z=group["pc3"], **common))
        else:
            fig.add_trace(go.Scatter(x=group["pc1"], y=group["pc2"], **common))
    fig.update_layout(
        title=dict(text=title, x=0.5),
        template="plotly_white",
        legend=dict(title="set (click to hide)", itemsizing="constant"),
        margin=dict(l=10, r=10, t=60, b=10),
        height=640,
    )
    if dims == 3:
        fig.update_layout(scene=dict(xaxis_title=titles[0], yaxis_title=titles[1], zaxis_title=titles[2]))
    else:
        fig.update_xaxes(title=titles[0], zeroline=False)
        fig.update_yaxes(title=titles[1], zeroline=False, scaleanchor="x", scaleratio=1)
    return fig
