"""Accuracy per ablation configuration: one description, :class:`AccuracyFigure`, drawn as plotly (HTML) and
matplotlib (PNG) from an accuracy table; both views show the same series, baseline, chance and intervals.

Two shapes, chosen from the configurations themselves:

- a **sweep** (each configuration removes one block, or its attention or MLP): a line over the block
  number, which is what the block order means; one line per part (``part`` column) when several are swept;
- anything else (pairs, ranges, a hand-picked list): horizontal **bars sorted by accuracy**, labelled
  with the configurations' labels (``drop 4,5``), the same as the tables; nothing joins unrelated
  configurations with a line.

The baseline (and the chance level, when the table has a ``chance`` column) are marked and labelled; the
legend sits outside the data. With ``ci_low``/``ci_high`` columns (bootstrap intervals), the accuracy of
all items has a shaded band per part (a sweep) or error bars (bars), and the baseline a shaded band of its own.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass

import pandas as pd
import plotly.graph_objects as go
from matplotlib.figure import Figure

from ..fonts import font_fallback
from .line_figure import PNG_TEXT_PT
from .palette import PALETTE
from .static import new_figure


@dataclass
class _Series:
    name: str  # "all items" or "group +" (one part); "attention", "MLP, group +" (several)
    values: list[float]
    baseline: float | None
    main: bool
    blocks: list[int]  # x of a sweep's line (its part's configurations)
    labels: list[str]  # the configurations' labels, in the same order
    ci: tuple[list[float], list[float]] | None = None  # (low, high) per value: the main series of each part


#: the most series a sweep shows at first; with more, only each part's main line (the others a legend click away)
SHOWN_SERIES = 6


@dataclass
class AccuracyFigure:
    """What the figure draws: the configurations (in drawing order), their x positions, the series; see the
    module. Built from an accuracy table by :meth:`of`."""

    title: str
    sweep: bool
    labels: list[str]
    blocks: list[int]  # the removed block of each configuration (sweeps only)
    series: list[_Series]
    chance: float | None
    parts: list[str]  # the parts removed (``block``, ``attn``, ``mlp``), in table order
    baseline_ci: tuple[float, float] | None = None

    @property
    def x_title(self) -> str:
        if len(self.parts) > 1:
            return "decoder block (the part in the legend removed)"
        return {"attn": "block whose attention is removed", "mlp": "block whose MLP is removed"}.get(
            self.parts[0] if self.parts else "block", "decoder block removed"
        )

    def shown(self, series: _Series) -> bool:
        """Whether a series is drawn at first (HTML) and at all (PNG): each part's main series, and the groups'
        lines of a sweep over one part with at most :data:`SHOWN_SERIES` series."""
        return series.main or (self.sweep and len(self.parts) <= 1 and len(self.series) <= SHOWN_SERIES)

    def band_name(self, series: _Series) -> str:
        return CI_NAME if len(self.parts) <= 1 else f"{series.name}, {CI_NAME}"

    @classmethod
    def of(cls, table: pd.DataFrame, groups: list[str], *, title: str) -> AccuracyFigure:
        """From :func:`layerscope.analysis.accuracy.accuracy_table`'s output; ``groups``: its groups (operations)."""
        return _layout(table, groups, title)

    def plotly(self) -> go.Figure:
        """A line over the removed block for a sweep, sorted bars otherwise; groups' series a legend click away
        where they are not :meth:`shown`."""
        return _plotly(self)

    def png(self) -> Figure:
        """The same figure as a PNG: the :meth:`shown` series, text at least :data:`PNG_TEXT_PT` points."""
        return _png(self)


_PART_NAMES = {"block": "whole block", "attn": "attention", "mlp": "MLP"}


def _layout(table: pd.DataFrame, groups: list[str], title: str) -> AccuracyFigure:
    ablated = table[table["config"] != "baseline"]
    base = table.loc[table["config"] == "baseline"]
    removed = [str(v) for v in ablated.get("removed_layers", pd.Series([""] * len(ablated)))]
    part_of = [str(v) for v in ablated.get("part", pd.Series(["block"] * len(ablated)))]
    parts = list(dict.fromkeys(part_of))
    sweep = bool(len(ablated)) and all(r.strip().isdigit() for r in removed)
    order = list(range(len(ablated)))
    if sweep:
        order.sort(key=lambda i: int(removed[i]))
    else:  # bars, the best on top
        order.sort(key=lambda i: float(ablated["accuracy"].iloc[i]))
    rows = ablated.iloc[order]
    # A sweep draws one line per part; bars draw every configuration in one series.
    lines = [(p, [j for j, i in enumerate(order) if part_of[i] == p]) for p in parts] if sweep else [("", None)]
    columns = ["accuracy", *[f"accuracy[{g}]" for g in groups]]
    has_ci = {"ci_low", "ci_high"} <= set(table.columns)
    series = []
    for k, column in enumerate(columns):
        for p, picked in lines:
            chosen = rows if picked is None else rows.iloc[picked]
            name = "all items" if k == 0 else f"group {groups[k - 1]}"
            if len(lines) > 1:
                name = _PART_NAMES.get(p, p) + ("" if k == 0 else f", {name}")
            series.append(
                _Series(
                    name=name,
                    values=[float(v) for v in chosen[column]],
                    baseline=None if base.empty else float(base[column].iloc[0]),
                    main=k == 0,
                    blocks=[int(r) for r in chosen.get("removed_layers", [])] if sweep else [],
                    labels=[str(v) for v in chosen["config"]],
                    ci=([float(v) for v in chosen["ci_low"]], [float(v) for v in chosen["ci_high"]])
                    if k == 0 and has_ci
                    else None,
                )
            )
    chance = float(table["chance"].iloc[0]) if "chance" in table.columns and len(table) else None
    if chance is not None and chance != chance:  # NaN: unknown
        chance = None
    blocks = sorted({int(removed[i]) for i in order}) if sweep else []
    baseline_ci = None
    if has_ci and not base.empty:
        baseline_ci = (float(base["ci_low"].iloc[0]), float(base["ci_high"].iloc[0]))
    return AccuracyFigure(title, sweep, [str(v) for v in rows["config"]], blocks, series, chance, parts, baseline_ci)


def _rgba(color: str, alpha: float) -> str:
    color = color.lstrip("#")
    r, g, b = (int(color[k : k + 2], 16) for k in (0, 2, 4))
    return f"rgba({r},{g},{b},{alpha})"


CI_NAME = "95% interval (bootstrap)"


def accuracy_figure(table: pd.DataFrame, groups: list[str], *, title: str) -> go.Figure:
    """:class:`AccuracyFigure`, interactive."""
    return AccuracyFigure.of(table, groups, title=title).plotly()


def accuracy_png(table: pd.DataFrame, groups: list[str], *, title: str) -> Figure:
    """:class:`AccuracyFigure` as a PNG."""
    return AccuracyFigure.of(table, groups, title=title).png()


def _plotly(shape: AccuracyFigure) -> go.Figure:
    fig = go.Figure()
    for k, s in enumerate(shape.series):
        color = PALETTE[k % len(PALETTE)]
        visible = True if shape.shown(s) else "legendonly"
        if shape.sweep:
            fig.add_trace(
                go.Scatter(
                    x=s.blocks,
                    y=s.values,
                    customdata=s.labels,
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
                    error_x=_error_bars(s.values, s.ci) if s.main else None,
                )
            )
    # The intervals after the lines (fig.data[0] stays the first part's main line), one band per part.
    for k, s in enumerate(shape.series):
        if not shape.sweep or s.ci is None:
            continue
        low, high = s.ci
        name = shape.band_name(s)
        fig.add_trace(
            go.Scatter(x=s.blocks, y=high, mode="lines", line=dict(width=0), showlegend=False, hoverinfo="skip")
        )
        fig.add_trace(
            go.Scatter(
                x=s.blocks,
                y=low,
                mode="lines",
                line=dict(width=0),
                fill="tonexty",
                fillcolor=_rgba(PALETTE[k % len(PALETTE)], 0.2),
                name=name,
                customdata=list(zip(low, high)),
                hovertemplate="%{customdata[0]:.3f} to %{customdata[1]:.3f}<extra>" + name + "</extra>",
            )
        )
    main = shape.series[0]  # the first part's line (all items)
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
                title=shape.x_title,
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
    fig.update_layout(
        title=dict(text=shape.title, x=0.5), template="plotly_white", legend=legend, margin=dict(r=160, t=70)
    )
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


def _png(shape: AccuracyFigure) -> Figure:
    pt = PNG_TEXT_PT
    n = len(shape.blocks) if shape.sweep else len(shape.labels)
    if shape.sweep:
        fig = new_figure(figsize=(max(7.5, 0.4 * n + 4), 4.8), dpi=130, layout="constrained")
    else:
        fig = new_figure(figsize=(8.5, max(3.2, 0.32 * n + 1.8)), dpi=130, layout="constrained")
    with font_fallback(shape):
        ax = fig.add_subplot()
        main = shape.series[0]
        if shape.sweep:
            for k, s in enumerate(shape.series):
                if not shape.shown(s):
                    continue
                ax.plot(
                    s.blocks,
                    s.values,
                    marker="o",
                    color=PALETTE[k % len(PALETTE)],
                    linewidth=2.5 if s.main else 1.0,
                    linestyle="-" if s.main else "--",
                    markersize=5 if s.main else 3,
                    alpha=1.0 if s.main else 0.8,
                    label=s.name,
                )
            for k, s in enumerate(shape.series):  # the intervals after the lines: the legend lists the lines first
                if s.ci is not None:
                    color = PALETTE[k % len(PALETTE)]
                    ax.fill_between(s.blocks, *s.ci, color=color, alpha=0.2, linewidth=0, label=shape.band_name(s))
            ax.set_xticks(shape.blocks if n <= 40 else shape.blocks[::4])
            ax.set_xlabel(shape.x_title, fontsize=pt + 1)
            ax.set_ylabel("accuracy", fontsize=pt + 1)
            ax.set_ylim(0, 1.05)
            mark = ax.axhline
        else:
            errors = None
            if main.ci is not None:
                errors = [
                    [v - lo for v, lo in zip(main.values, main.ci[0])],
                    [h - v for v, h in zip(main.values, main.ci[1])],
                ]
            ax.barh(range(n), main.values, color=PALETTE[0], label=main.name, xerr=errors, ecolor="#444444", capsize=2)
            ax.set_yticks(range(n), shape.labels)
            ax.set_xlabel("accuracy", fontsize=pt + 1)
            ax.set_xlim(0, 1.05)
            mark = ax.axvline
        if main.baseline is not None and shape.baseline_ci is not None:
            span = ax.axhspan if shape.sweep else ax.axvspan
            span(*shape.baseline_ci, color=PALETTE[0], alpha=0.08, linewidth=0)
        if main.baseline is not None:
            mark(main.baseline, color=PALETTE[0], linestyle=":", linewidth=1.8, label=f"baseline {main.baseline:.3f}")
        if shape.chance is not None:
            mark(shape.chance, color="#888888", linestyle="--", linewidth=1.2, label=f"chance {shape.chance:.3f}")
        ax.tick_params(labelsize=pt)
        ax.grid(alpha=0.3)
        ax.set_title("\n".join(textwrap.wrap(shape.title, 80)), fontsize=pt + 1)
        ax.legend(fontsize=pt, frameon=False, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return fig
