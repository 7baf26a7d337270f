"""Figures of a sweep across models: per-layer numbers on relative depth, ablation curves, the status of each model."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from .bar_figure import Bars, GroupedBars
from .line_figure import Line, LineFigure, Panel
from .palette import color_map

RELATIVE_AXIS = "relative depth (0 = embed, 1 = last block)"


def depth_lines(table: pd.DataFrame, columns: dict[str, str], *, title: str) -> LineFigure:
    """One panel per column of ``table`` (``model, layer, relative_depth, <columns>``) against relative depth,
    one line per model, so models of different depths line up.

    Example:
        >>> depth_lines(metrics, {"silhouette": "silhouette"}, title="layers across models").png()
    """
    colors = color_map(list(table["model"]))
    panels = []
    for name, label in columns.items():
        lines = []
        for model, rows in table.groupby("model", sort=False):
            rows = rows.sort_values("relative_depth", kind="stable")
            hover = [f"layer {layer}" for layer in rows["layer"]]
            lines.append(Line(str(model), list(rows["relative_depth"]), list(rows[name]), colors[model], hover))
        panels.append(Panel(label, lines, x_title=RELATIVE_AXIS, categories=False))
    return LineFigure(title, panels, height=440)


def depth_lines_figure(table: pd.DataFrame, columns: dict[str, str], *, title: str) -> go.Figure:
    """:func:`depth_lines`, interactive."""
    return depth_lines(table, columns, title=title).plotly()


def ablation_curves(table: pd.DataFrame, *, title: str) -> LineFigure:
    """Accuracy with one block removed against that block's relative depth, one line per model, its baseline
    dashed in the same colour (``table``: ``model, config, relative_depth, accuracy``)."""
    colors = color_map(list(table["model"]))
    lines = []
    for model, rows in table.groupby("model", sort=False):
        singles = rows[rows["relative_depth"].notna()].sort_values("relative_depth", kind="stable")
        x, y, configs = list(singles["relative_depth"]), list(singles["accuracy"]), list(singles["config"])
        lines.append(Line(str(model), x, y, colors[model], hover=configs))
        base = rows.loc[rows["config"] == "baseline", "accuracy"]
        if len(base) and pd.notna(base.iloc[0]):
            value = float(base.iloc[0])
            hover = [f"{model} baseline"] * 2
            lines.append(
                Line(str(model), [0, 1], [value, value], colors[model], hover, dash=True, legend=False, markers=False)
            )
    panel = Panel(
        "",
        lines,
        x_title="relative depth of the removed block (1 = last block)",
        y_title="accuracy (dashed: nothing removed)",
        categories=False,
        x_range=(0, 1.02),
        y_range=(0, 1.05),
    )
    return LineFigure(title, [panel], height=440)


def ablation_curves_figure(table: pd.DataFrame, *, title: str) -> go.Figure:
    """:func:`ablation_curves`, interactive."""
    return ablation_curves(table, title=title).plotly()


#: the colour of each status of a model in a sweep
STATUS_COLORS = {"ok": "#59a14f", "skipped": "#bab0ac", "failed": "#e15759"}


def status_bars(status: pd.DataFrame) -> GroupedBars:
    """Seconds per model (``status``: ``model, status, reason, seconds``), one group per status (``ok``,
    ``skipped``, ``failed``) coloured by it: each model has one bar, in its state's group."""
    states = list(dict.fromkeys(str(s) for s in status["status"]))
    models = [str(m) for m in status["model"]]
    groups = []
    for state in states:
        mine = [str(s) == state for s in status["status"]]
        values = [float(sec) if here else None for sec, here in zip(status["seconds"], mine)]
        texts = [f"{v:.1f} s" if v is not None else "" for v in values]
        groups.append(Bars(state, values, texts, STATUS_COLORS.get(state, "#4e79a7")))
    return GroupedBars("models of the sweep", models, groups, y_title="seconds")


def status_figure(status: pd.DataFrame) -> go.Figure:
    """:func:`status_bars`, interactive, each bar's reason (a failure's one line) on hover."""
    fig = status_bars(status).plotly()
    reasons = dict(zip((str(m) for m in status["model"]), (str(r) for r in status["reason"])))
    fig.for_each_trace(
        lambda trace: trace.update(
            hovertext=[reasons[str(x)] for x in trace.x], hovertemplate="%{x}: %{y:.1f} s<br>%{hovertext}"
        )
    )
    fig.update_layout(barmode="overlay", height=400)
    return fig
