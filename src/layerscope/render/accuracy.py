"""Accuracy per ablation configuration: plotly (HTML) and matplotlib (PNG), from an accuracy table.

Two shapes, chosen from the configurations themselves:

- a **sweep** (each configuration removes one block): a line over the block number, which is what the
  block order means;
- anything else (pairs, ranges, a hand-picked list): horizontal **bars sorted by accuracy**, labelled
  with the configurations' labels (``drop 4,5``), the same as the tables; nothing joins unrelated
  configurations with a line.

The baseline (and the chance level, when the table has a ``chance`` column) are marked and labelled; the
legend sits outside the data. With ``ci_low``/``ci_high`` columns (bootstrap intervals), the accuracy of
all items has a shaded band (a sweep) or error bars (bars), and the baseline a shaded band of its own.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pandas as pd
import plotly.graph_objects as go

from .palette import PALETTE

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure


@dataclass
class _Series:
    name: str  # "all items" or "group +"
    values: list[float]
    baseline: float | None
    main: bool


@dataclass
class _Layout:
    """What the figure draws: the configurations (in drawing order), their x positions, the series."""

    sweep: bool
    labels: list[str]
    blocks: list[int]  # the removed block of each configuration (sweeps only)
    series: list[_Series]
    chance: float | None
    ci: tuple[list[float], list[float]] | None = None  # (low, high) of the main series, in drawing order
    baseline_ci: tuple[float, float] | None = None


def _layout(table: pd.DataFrame, groups: list[str]) -> _Layout:
    ablated = table[table["config"] != "baseline"]
    base = table.loc[table["config"] == "baseline"]
    removed = [str(v) for v in ablated.get("removed_layers", pd.Series([""] * len(ablated)))]
    sweep = bool(len(ablated)) and all(r.strip().isdigit() for r in removed)
    order = list(range(len(ablated)))
    if sweep:
        order.sort(key=lambda i: int(removed[i]))
    else:  # bars, the best on top
        order.sort(key=lambda i: float(ablated["accuracy"].iloc[i]))
    rows = ablated.iloc[order]
    series = []
    for k, column in enumerate(["accuracy", *[f"accuracy[{g}]" for g in groups]]):
        series.append(
            _Series(
                name="all items" if k == 0 else f"group {groups[k - 1]}",
                values=[float(v) for v in rows[column]],
                baseline=None if base.empty else float(base[column].iloc[0]),
                main=k == 0,
            )
        )
    chance = float(table["chance"].iloc[0]) if "chance" in table.columns and len(table) else None
    if chance is not None and chance != chance:  # NaN: unknown
        chance = None
    blocks = [int(removed[i]) for i in order] if sweep else []
    ci = baseline_ci = None
    if {"ci_low", "ci_high"} <= set(table.columns):
        ci = ([float(v) for v in rows["ci_low"]], [float(v) for v in rows["ci_high"]])
        if not base.empty:
            baseline_ci = (float(base["ci_low"].iloc[0]), float(base["ci_high"].iloc[0]))
    return _Layout(sweep, [str(v) for v in rows["config"]], blocks, series, chance, ci, baseline_ci)


def _rgba(color: str, alpha: float) -> str:
    color = color.lstrip("#")
    r, g, b = (int(color[k : k + 2], 16) for k in (0, 2, 4))
    return f"rgba({r},{g},{b},{alpha})"


CI_NAME = "95% interval (bootstrap)"


def accuracy_figure(table: pd.DataFrame, groups: list[str], *, title: str) -> go.Figure:
    """Accuracy per configuration: a line over the removed block for a sweep, sorted bars otherwise.

    ``table`` is :func:`layerscope.analysis.accuracy.accuracy_table`'s output. Groups (operations) are
    dashed lines for a sweep (click the legend to hide one) and hidden bars otherwise.
    """
    shape = _layout(table, groups)
    fig = go.Figure()
    many = len(shape.series) > 6
    for k, s in enumerate(shape.series):
        color = PALETTE[k % len(PALETTE)]
        visible = True if s.main else ("legendonly" if many or not shape.sweep else True)
        if shape.sweep:
            fig.add_trace(
                go.Scatter(
                    x=shape.blocks,
                    y=s.values,
                    customdata=shape.labels,
                    name=s.name,
                    mode="lines+markers",
                    line=dict(color=color, width=3 if s.main else 1.5, dash=None if s.main else "dash"),
                    marker=dict(size=8 if s.main else 5),
                    hovertemplate="%{customdata}: %{y:.3f}<extra>" + s.name + "</extra>",
                    visible=visible,
                )
            )
        else:
            fig.add_trace(
                go.Bar(
                    y=shape.labels,
                    x=s.values,
                    orientation="h",
                    name=s.name,
                    marker=dict(color=color),
                    hovertemplate="%{y}: %{x:.3f}<extra>" + s.name + "</extra>",
                    visible=visible,
                    error_x=_error_bars(s.values, shape.ci) if s.main else None,
                )
            )
    if shape.sweep and shape.ci is not None:  # after the lines: fig.data[0] stays the main line
        low, high = shape.ci
        fig.add_trace(
            go.Scatter(x=shape.blocks, y=high, mode="lines", line=dict(width=0), showlegend=False, hoverinfo="skip")
        )
        fig.add_trace(
            go.Scatter(
                x=shape.blocks,
                y=low,
                mode="lines",
                line=dict(width=0),
                fill="tonexty",
                fillcolor=_rgba(PALETTE[0], 0.2),
                name=CI_NAME,
                customdata=list(zip(low, high)),
                hovertemplate="%{customdata[0]:.3f} to %{customdata[1]:.3f}<extra>" + CI_NAME + "</extra>",
            )
        )
    main = shape.series[0]
    if shape.baseline_ci is not None and main.baseline is not None:
        band = dict(fillcolor=PALETTE[0], opacity=0.08, line_width=0, layer="below")
        if shape.sweep:
            fig.add_hrect(y0=shape.baseline_ci[0], y1=shape.baseline_ci[1], **band)
        else:
            fig.add_vrect(x0=shape.baseline_ci[0], x1=shape.baseline_ci[1], **band)
    marks = [("baseline", main.baseline, PALETTE[0], "dot"), ("chance", shape.chance, "#888888", "dash")]
    for name, value, color, dash in marks:
        if value is None:
            continue
        line = dict(color=color, width=2, dash=dash)
        text = f"{name} {value:.3f}"
        if shape.sweep:
            fig.add_hline(y=value, line=line, annotation_text=text, annotation_position="top right")
        else:
            fig.add_vline(x=value, line=line, annotation_text=text, annotation_position="top")
    legend = dict(title="click to hide", x=1.02, xanchor="left", y=1, yanchor="top")
    if shape.sweep:
        fig.update_layout(
            xaxis=dict(
                title="decoder block removed",
                tickmode="linear",
                tick0=0,
                dtick=1 if len(shape.blocks) <= 40 else 4,
                range=[min(shape.blocks) - 0.5, max(shape.blocks) + 0.5],  # no tick beyond the blocks
            ),
            yaxis=dict(title="accuracy", range=[0, 1.05]),
            height=520,
        )
    else:
        fig.update_layout(
            xaxis=dict(title="accuracy", range=[0, 1.05]),
            yaxis=dict(title="configuration", type="category", automargin=True),
            barmode="group",
            height=max(360, 28 * len(shape.labels) + 160),
        )
    fig.update_layout(title=dict(text=title, x=0.5), template="plotly_white", legend=legend, margin=dict(r=160, t=70))
    return fig


def _error_bars(values: list[float], ci: tuple[list[float], list[float]] | None) -> dict | None:
    if ci is None:
        return None
    low, high = ci
    return dict(
        type="data",
        symmetric=False,
        array=[h - v for v, h in zip(values, high)],
        arrayminus=[v - lo for v, lo in zip(values, low)],
        color="#444444",
        thickness=1,
    )


def accuracy_png(table: pd.DataFrame, groups: list[str], *, title: str) -> Figure:
    """The same figure for a PNG (a matplotlib :class:`~matplotlib.figure.Figure`, saved by the run directory)."""
    from .static import new_figure

    shape = _layout(table, groups)
    n = len(shape.labels)
    if shape.sweep:
        fig = new_figure(figsize=(max(7.5, 0.4 * n + 4), 4.8), dpi=130)
    else:
        fig = new_figure(figsize=(8.5, max(3.2, 0.32 * n + 1.8)), dpi=130)
    ax = fig.add_subplot()
    main = shape.series[0]
    if shape.sweep:
        if shape.ci is not None:
            ax.fill_between(shape.blocks, *shape.ci, color=PALETTE[0], alpha=0.2, linewidth=0, label=CI_NAME)
        for k, s in enumerate(shape.series):
            ax.plot(
                shape.blocks,
                s.values,
                marker="o",
                color=PALETTE[k % len(PALETTE)],
                linewidth=2.5 if s.main else 1.0,
                linestyle="-" if s.main else "--",
                markersize=5 if s.main else 3,
                alpha=1.0 if s.main else 0.8,
                label=s.name,
            )
        ax.set_xticks(shape.blocks if n <= 40 else shape.blocks[::4])
        ax.set_xlabel("decoder block removed")
        ax.set_ylabel("accuracy")
        ax.set_ylim(0, 1.05)
        mark = ax.axhline
    else:
        errors = None
        if shape.ci is not None:
            errors = [
                [v - lo for v, lo in zip(main.values, shape.ci[0])],
                [h - v for v, h in zip(main.values, shape.ci[1])],
            ]
        ax.barh(range(n), main.values, color=PALETTE[0], label=main.name, xerr=errors, ecolor="#444444", capsize=2)
        ax.set_yticks(range(n), shape.labels, fontsize=8)
        ax.set_xlabel("accuracy")
        ax.set_xlim(0, 1.05)
        mark = ax.axvline
    if main.baseline is not None and shape.baseline_ci is not None:
        span = ax.axhspan if shape.sweep else ax.axvspan
        span(*shape.baseline_ci, color=PALETTE[0], alpha=0.08, linewidth=0)
    if main.baseline is not None:
        mark(main.baseline, color=PALETTE[0], linestyle=":", linewidth=1.8, label=f"baseline {main.baseline:.3f}")
    if shape.chance is not None:
        mark(shape.chance, color="#888888", linestyle="--", linewidth=1.2, label=f"chance {shape.chance:.3f}")
    ax.grid(alpha=0.3)
    ax.set_title("\n".join(textwrap.wrap(title, 80)), fontsize=10)
    ax.legend(fontsize=8, frameon=False, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    return fig
