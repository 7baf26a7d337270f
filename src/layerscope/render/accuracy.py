"""Accuracy against the removed layers: plotly (HTML) and matplotlib (PNG), from an accuracy table."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from .palette import PALETTE


def _series(table: pd.DataFrame, groups: list[str]):
    ablated = table[table["config"] != "baseline"]
    labels = [str(v) for v in ablated["removed_layers"]]
    base = table.loc[table["config"] == "baseline"]
    lines = [("all", ablated["accuracy"].tolist(), None if base.empty else float(base["accuracy"].iloc[0]))]
    for group in groups:
        column = f"accuracy[{group}]"
        lines.append((group, ablated[column].tolist(), None if base.empty else float(base[column].iloc[0])))
    return labels, lines


def accuracy_figure(table: pd.DataFrame, groups: list[str], *, title: str) -> go.Figure:
    """Accuracy per configuration (x: the removed layers), the baseline as a horizontal line, and a dashed
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
                hovertemplate="removed %{x}: %{y:.3f}<extra>" + ("all" if main else name) + "</extra>",
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
        xaxis=dict(title="removed layer(s)", type="category"),
        yaxis=dict(title="accuracy", range=[0, 1.05]),
        legend=dict(title="click to hide"),
        height=520,
    )
    return fig


def accuracy_png(table: pd.DataFrame, groups: list[str], path, *, title: str) -> None:
    """The same figure as a PNG (matplotlib)."""
    from .static import plt, save_png

    labels, lines = _series(table, groups)
    fig, ax = plt.subplots(figsize=(max(7, 0.45 * len(labels) + 3), 4.8), dpi=130)
    for k, (name, values, base) in enumerate(lines):
        color = PALETTE[k % len(PALETTE)]
        main = k == 0
        ax.plot(
            labels, values, marker="o", color=color, linewidth=2.5 if main else 1.2,
            linestyle="-" if main else "--", markersize=5 if main else 3, label="all items" if main else f"group {name}",
        )
        if base is not None:
            ax.axhline(base, color=color, linestyle=":", linewidth=1.5 if main else 0.8)
    ax.set_xlabel("removed layer(s) (dotted: baseline)")
    ax.set_ylabel("accuracy")
    ax.set_ylim(0, 1.05)
    ax.grid(alpha=0.3)
    ax.set_title(title)
    ax.legend(fontsize=8, frameon=False, loc="lower right")
    fig.tight_layout()
    save_png(fig, path)
