"""Figures of a sweep across models: per-layer numbers on relative depth, ablation curves, the status of each model."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from .palette import color_map

RELATIVE_AXIS = "relative depth (0 = embed, 1 = last block)"


def depth_lines_figure(table: pd.DataFrame, columns: dict[str, str], *, title: str) -> go.Figure:
    """One panel per column of ``table`` (``model, layer, relative_depth, <columns>``) against relative depth,
    one line per model, so models of different depths line up.

    Example:
        >>> depth_lines_figure(metrics, {"silhouette": "silhouette"}, title="layers across models")
    """
    fig = make_subplots(rows=1, cols=max(len(columns), 1), subplot_titles=list(columns.values()))
    colors = color_map(list(table["model"]))
    for col, name in enumerate(columns, start=1):
        for model, rows in table.groupby("model", sort=False):
            rows = rows.sort_values("relative_depth", kind="stable")
            fig.add_trace(
                go.Scatter(
                    x=list(rows["relative_depth"]),
                    y=list(rows[name]),
                    text=[f"layer {layer}" for layer in rows["layer"]],
                    name=str(model),
                    legendgroup=str(model),
                    showlegend=col == 1,
                    mode="lines+markers",
                    line=dict(color=colors[model]),
                    hovertemplate="%{text}<br>%{x:.3f}: %{y:.4g}",
                ),
                row=1,
                col=col,
            )
        fig.update_xaxes(title_text=RELATIVE_AXIS, row=1, col=col)
    fig.update_layout(title=dict(text=title, x=0.5), template="plotly_white", height=440)
    return fig


def ablation_curves_figure(table: pd.DataFrame, *, title: str) -> go.Figure:
    """Accuracy with one block removed against that block's relative depth, one line per model, its baseline
    dashed in the same colour (``table``: ``model, config, relative_depth, accuracy``)."""
    fig = go.Figure()
    colors = color_map(list(table["model"]))
    for model, rows in table.groupby("model", sort=False):
        singles = rows[rows["relative_depth"].notna()].sort_values("relative_depth", kind="stable")
        fig.add_trace(
            go.Scatter(
                x=list(singles["relative_depth"]),
                y=list(singles["accuracy"]),
                text=list(singles["config"]),
                name=str(model),
                legendgroup=str(model),
                mode="lines+markers",
                line=dict(color=colors[model]),
                hovertemplate="%{text}: %{y:.3f}",
            )
        )
        base = rows.loc[rows["config"] == "baseline", "accuracy"]
        if len(base) and pd.notna(base.iloc[0]):
            fig.add_trace(
                go.Scatter(
                    x=[0, 1],
                    y=[float(base.iloc[0])] * 2,
                    name=f"{model} baseline",
                    legendgroup=str(model),
                    showlegend=False,
                    mode="lines",
                    line=dict(color=colors[model], dash="dash"),
                    hovertemplate=f"{model} baseline: %{{y:.3f}}",
                )
            )
    fig.update_layout(
        title=dict(text=title, x=0.5),
        template="plotly_white",
        height=440,
        xaxis=dict(title="relative depth of the removed block (1 = last block)", range=[0, 1.02]),
        yaxis=dict(title="accuracy (dashed: nothing removed)", range=[0, 1.05]),
    )
    return fig


def status_figure(status: pd.DataFrame) -> go.Figure:
    """Seconds per model, coloured by status (``ok``, ``skipped``, ``failed``), the reason on hover."""
    colors = {"ok": "#59a14f", "skipped": "#bab0ac", "failed": "#e15759"}
    fig = go.Figure()
    for state, rows in status.groupby("status", sort=False):
        fig.add_trace(
            go.Bar(
                x=list(rows["model"]),
                y=list(rows["seconds"]),
                name=str(state),
                marker_color=colors.get(str(state), "#4e79a7"),
                text=[str(r) for r in rows["reason"]],
                hovertemplate="%{x}: %{y:.1f} s<br>%{text}",
            )
        )
    fig.update_layout(
        title=dict(text="models of the sweep", x=0.5), template="plotly_white", yaxis=dict(title="seconds"), height=400
    )
    return fig
