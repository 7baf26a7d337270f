"""Accuracy per ablation configuration: plotly (HTML) and matplotlib (PNG), from an accuracy table.

The x axis carries the configurations' labels (``drop 4``, ``drop 4,5``), the same as the tables.
"""

from __future__ import annotations

import textwrap
from typing import TYPE_CHECKING

import pandas as pd
import plotly.graph_objects as go

from .palette import PALETTE

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure


def _series(table: pd.DataFrame, groups: list[str]):
    ablated = table[table["config"] != "baseline"]
    labels = [str(v) for v in ablated["config"]]
    base = table.loc[table["config"] == "baseline"]
    lines = [("all", ablated["accuracy"].tolist(), None if base.empty else float(base["accuracy"].iloc[0]))]
    for group in groups:
        column = f"accuracy[{group}]"
        lines.append((group, ablated[column].tolist(), None if base.empty else float(base[column].iloc[0])))
    return labels, lines


def accuracy_figure(table: pd.DataFrame, groups: list[str], *, title: str) -> go.Figure:
    """Accuracy per configuration (x: its label, ``drop 4``), the baseline as a horizontal line, and a dashed
    line per group (click the legend to hide one).

    ``table`` is :func:`layerscope.analysis.accuracy.accuracy_table`'s output.
    """
    labels, lines = _series(table, groups)
    fig = go.Figure()
    for k, (name, values, base) in enumerate(lines):
        color = PALETTE[k % len(PALETTE)]
        main = k == 0
        fig.add_trace(
            go.Scatter(
                x=labels,
                y=values,
                name="all items" if main else f"group {name}",
                mode="lines+markers",
                line=dict(color=color, width=3 if main else 1.5, dash=None if main else "dash"),
                marker=dict(size=8 if main else 5),
                hovertemplate="%{x}: %{y:.3f}<extra>" + ("all" if main else name) + "</extra>",
                visible=True if main else "legendonly" if len(lines) > 6 else True,
            )
        )
        if base is not None:
            # Only the overall baseline is labelled: an annotation without text shows plotly's "new text".
            label = dict(annotation_text=f"baseline {base:.3f}", annotation_position="top left") if main else {}
            fig.add_hline(y=base, line=dict(color=color, width=2 if main else 1, dash="dot"), **label)
    fig.update_layout(
        title=dict(text=title, x=0.5),
        template="plotly_white",
        xaxis=dict(title="decoder blocks removed", type="category"),
        yaxis=dict(title="accuracy", range=[0, 1.05]),
        legend=dict(title="click to hide"),
        height=520,
    )
    return fig


def accuracy_png(table: pd.DataFrame, groups: list[str], *, title: str) -> Figure:
    """The same figure for a PNG (a matplotlib :class:`~matplotlib.figure.Figure`, saved by the run directory)."""
    from .static import new_figure

    labels, lines = _series(table, groups)
    fig = new_figure(figsize=(max(7, 0.55 * len(labels) + 3), 4.8), dpi=130)
    ax = fig.add_subplot()
    for k, (name, values, base) in enumerate(lines):
        color = PALETTE[k % len(PALETTE)]
        main = k == 0
        ax.plot(
            labels,
            values,
            marker="o",
            color=color,
            linewidth=2.5 if main else 1.2,
            linestyle="-" if main else "--",
            markersize=5 if main else 3,
            label="all items" if main else f"group {name}",
        )
        if base is not None:
            ax.axhline(base, color=color, linestyle=":", linewidth=1.5 if main else 0.8)
    ax.set_xlabel("decoder blocks removed (dotted: baseline)")
    ax.set_ylabel("accuracy")
    ax.set_ylim(0, 1.05)
    ax.grid(alpha=0.3)
    ax.set_title("\n".join(textwrap.wrap(title, 80)), fontsize=10)
    ax.legend(fontsize=8, frameon=False, loc="lower right")
    if len(labels) > 8:  # "drop 0" ... "drop 17" side by side would overlap
        ax.tick_params(axis="x", labelrotation=60)
        for label in ax.get_xticklabels():
            label.set_horizontalalignment("right")
            label.set_rotation_mode("anchor")
    fig.tight_layout()
    return fig
