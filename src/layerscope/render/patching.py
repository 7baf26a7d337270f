"""Patching figures from ``patch.csv`` rows: plotly (HTML) and matplotlib (PNG); no statistics computed here.

- :func:`position_figure`: layer x position heatmap of ``normalized`` for one part, the prompt's tokens on the
  x axis shown visibly (``␣`` for a space, ``\\n`` spelled), the changed positions marked ``▸`` and framed;
- :func:`heads_figure`: layer x head grid (``head_positions="each"``: each head's largest value over positions);
- :func:`layers_figure`: one line per part over the blocks, the largest value of any one position.

Colours: 0 (the corrupt run's value) white, 1 (the clean run's) dark red, negative values blue.
"""

from __future__ import annotations

import textwrap
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from .heatmap import visible_token
from .palette import PALETTE
from .static import font_fallback, new_figure

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

COLORSCALE = "RdBu_r"
MARK = "▸"


def _grid(rows: pd.DataFrame, column: str) -> tuple[np.ndarray, list[str], list]:
    """``(layers, columns)`` of ``normalized``, the layer names by depth, and the column keys in order."""
    rows = rows.sort_values(["depth", column])
    layers = list(dict.fromkeys(rows["layer"].astype(str)))
    keys = sorted(dict.fromkeys(int(v) for v in rows[column].dropna()))
    table = rows.pivot_table(index="depth", columns=column, values="normalized", aggfunc="max", dropna=False)
    table = table.reindex(columns=keys)
    return table.to_numpy(dtype=float), layers, keys


def token_labels(tokens: list[str], positions: list[int], changed: list[int]) -> list[str]:
    """``"11 ▸␣John"``: position, a mark where the prompts differ, the token shown visibly."""
    out = []
    for p in positions:
        token = visible_token(tokens[p]) if p < len(tokens) else "?"
        out.append(f"{p} {MARK if p in changed else ''}{token}")
    return out


def _range(z: np.ndarray) -> float:
    finite = np.abs(z[np.isfinite(z)])
    return max(1.0, float(finite.max())) if finite.size else 1.0


def position_figure(rows: pd.DataFrame, tokens: list[str], changed: list[int], *, title: str) -> go.Figure:
    z, layers, positions = _grid(rows, "position")
    labels = token_labels(tokens, positions, changed)
    bound = _range(z)
    figure = go.Figure(
        go.Heatmap(
            z=z,
            x=labels,
            y=layers,
            zmin=-bound,
            zmax=bound,
            colorscale=COLORSCALE,
            colorbar={"title": "normalized"},
            hovertemplate="layer %{y}<br>%{x}<br>normalized %{z:.3f}<extra></extra>",
        )
    )
    for p in changed:
        if p in positions:
            i = positions.index(p)
            figure.add_vrect(x0=i - 0.5, x1=i + 0.5, line={"color": PALETTE[0], "width": 2}, fillcolor="rgba(0,0,0,0)")
    figure.update_layout(
        title=title,
        xaxis={"title": f"position and token ({MARK} the prompts differ)", "tickangle": -60, "type": "category"},
        yaxis={
            "title": "layer (embed, then each block's output)" if "embed" in layers else "block",
            "type": "category",
        },
        template="plotly_white",
        height=max(420, 22 * len(layers) + 220),
    )
    return figure


def heads_figure(rows: pd.DataFrame, *, title: str) -> go.Figure:
    z, layers, heads = _grid(rows, "head")
    bound = _range(z)
    each = rows["position"].notna().any()
    figure = go.Figure(
        go.Heatmap(
            z=z,
            x=[str(h) for h in heads],
            y=layers,
            zmin=-bound,
            zmax=bound,
            colorscale=COLORSCALE,
            colorbar={"title": "normalized"},
            hovertemplate="block %{y} head %{x}<br>normalized %{z:.3f}<extra></extra>",
        )
    )
    figure.update_layout(
        title=title,
        xaxis={
            "title": "head" + (" (its largest value over positions)" if each else " (patched at every position)"),
            "type": "category",
        },
        yaxis={"title": "block", "type": "category"},
        template="plotly_white",
        height=max(420, 22 * len(layers) + 200),
    )
    return figure


def _layer_lines(cells: pd.DataFrame) -> dict[str, pd.Series]:
    out = {}
    for part, name in (("attn", "attention output"), ("mlp", "MLP output")):
        rows = cells[cells["part"] == part]
        if len(rows):
            out[name] = rows.groupby("depth")["normalized"].max().sort_index()
    return out


def layers_figure(cells: pd.DataFrame, *, title: str) -> go.Figure:
    figure = go.Figure()
    for i, (name, series) in enumerate(_layer_lines(cells).items()):
        figure.add_trace(
            go.Scatter(
                x=[int(d) - 1 for d in series.index],
                y=series.to_numpy(),
                mode="lines+markers",
                name=name,
                line={"color": PALETTE[i % len(PALETTE)]},
            )
        )
    figure.update_layout(
        title=title,
        xaxis={"title": "block", "dtick": 1},
        yaxis={"title": "normalized (largest over positions)"},
        template="plotly_white",
        legend={"x": 1.02, "y": 1},
    )
    return figure


# ----- PNG -------------------------------------------------------------------------------------------
def _heat_png(z, xlabels, ylabels, title, xtitle, ytitle, marked=()) -> Figure:
    from matplotlib import colors
    from matplotlib.patches import Rectangle

    bound = _range(z)
    with font_fallback(xlabels, ylabels, title, xtitle, ytitle):
        figure = new_figure(figsize=(max(6.0, 0.32 * len(xlabels) + 3), max(4.0, 0.26 * len(ylabels) + 2)))
        axes = figure.add_subplot(1, 1, 1)
        image = axes.imshow(
            np.ma.masked_invalid(z),
            aspect="auto",
            origin="lower",
            cmap=COLORSCALE,
            norm=colors.Normalize(-bound, bound),
        )
        axes.set_xticks(range(len(xlabels)), xlabels, rotation=70, ha="right", fontsize=7)
        axes.set_yticks(range(len(ylabels)), ylabels, fontsize=7)
        for i in marked:
            axes.get_xticklabels()[i].set_color("#b2182b")
            axes.get_xticklabels()[i].set_fontweight("bold")
            axes.add_patch(Rectangle((i - 0.5, -0.5), 1, len(ylabels), fill=False, edgecolor="black", linewidth=1.2))
        axes.set_xlabel(xtitle)
        axes.set_ylabel(ytitle)
        axes.set_title(textwrap.fill(title, 90), fontsize=9)
        figure.colorbar(image, ax=axes, label="normalized")
        figure.tight_layout()
    return figure


def position_png(rows: pd.DataFrame, tokens: list[str], changed: list[int], *, title: str) -> Figure:
    z, layers, positions = _grid(rows, "position")
    labels = token_labels(tokens, positions, changed)
    marked = [i for i, p in enumerate(positions) if p in changed]
    return _heat_png(z, labels, layers, title, f"position and token ({MARK} the prompts differ)", "layer", marked)


def heads_png(rows: pd.DataFrame, *, title: str) -> Figure:
    z, layers, heads = _grid(rows, "head")
    return _heat_png(z, [str(h) for h in heads], layers, title, "head", "block")


def layers_png(cells: pd.DataFrame, *, title: str) -> Figure:

    with font_fallback(cells, title):
        figure = new_figure(figsize=(7, 4))
        axes = figure.add_subplot(1, 1, 1)
        for i, (name, series) in enumerate(_layer_lines(cells).items()):
            axes.plot(
                [int(d) - 1 for d in series.index],
                series.to_numpy(),
                marker="o",
                label=name,
                color=PALETTE[i % len(PALETTE)],
            )
        axes.set_xlabel("block")
        axes.set_ylabel("normalized (largest over positions)")
        axes.set_title(title, fontsize=9)
        axes.legend(loc="upper left", bbox_to_anchor=(1.01, 1))
        figure.tight_layout()
    return figure
