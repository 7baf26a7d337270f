"""Static figures with matplotlib (no browser needed), written as PNG by the run directory.

Figures are built with :class:`matplotlib.figure.Figure`, not pyplot: no backend is chosen or
switched, and nothing shows up by itself in a notebook.
"""

from __future__ import annotations

from collections.abc import Collection

import pandas as pd
from matplotlib.figure import Figure

from ..fonts import font_fallback
from .palette import color_map
from .scatter import axis_titles


def new_figure(**kwargs) -> Figure:
    """A matplotlib figure outside pyplot (no backend, no global state)."""
    return Figure(**kwargs)


def projection_png(
    table: pd.DataFrame, explained_ratio: list[float], *, title: str, connect: bool | Collection[str] = True
) -> Figure:
    """A 2-D or 3-D scatter of ``table`` (columns ``set, label, pc1, pc2[, pc3]``), for a PNG.

    ``connect``: as in :func:`layerscope.render.scatter.projection_figure` (True, False, or the ordered sets).
    """
    dims = len(explained_ratio)
    titles = axis_titles(explained_ratio)
    colors = color_map(list(table["set"]))
    fig = new_figure(figsize=(8, 7), dpi=130)
    ax = fig.add_subplot(projection="3d") if dims == 3 else fig.add_subplot()
    for set_name, group in table.groupby("set", sort=False):
        coords = [group[f"pc{i + 1}"].to_numpy() for i in range(dims)]
        color = colors[set_name]
        ax.scatter(*coords, color=color, label=str(set_name), s=28, depthshade=False) if dims == 3 else ax.scatter(
            *coords, color=color, label=str(set_name), s=28
        )
        if connect is True or (not isinstance(connect, bool) and set_name in connect):
            ax.plot(*coords, color=color, linewidth=1, alpha=0.6)
        for i, label in enumerate(group["label"]):
            ax.text(*(c[i] for c in coords), f" {label}", color=color, fontsize=8)
    ax.set_xlabel(titles[0])
    ax.set_ylabel(titles[1])
    if dims == 3:
        ax.set_zlabel(titles[2])
    else:
        ax.set_aspect("equal", adjustable="datalim")
        ax.grid(alpha=0.3)
    ax.set_title(title)
    ax.legend(loc="best", fontsize=8, frameon=False)
    fig.tight_layout()
    return fig


def projections_png(panels: dict[str, pd.DataFrame], explained: dict[str, list[float]], *, title: str) -> Figure:
    """One 2-D scatter per panel side by side (``{panel title: table with pc1, pc2, label}``, each with its
    explained-variance ratios): the static page of figures that are one interactive figure each."""
    n = max(len(panels), 1)
    cols = min(n, 3)
    rows = -(-n // cols)
    fig = new_figure(figsize=(4.6 * cols, 4.2 * rows + 0.6), dpi=110, layout="constrained")
    with font_fallback():
        axes = fig.subplots(rows, cols, squeeze=False).ravel()
        for ax, (name, table) in zip(axes, panels.items()):
            ratios = explained.get(name, [])[:2]
            x_title, y_title = [axis_titles(ratios)[i] if i < len(ratios) else f"PC{i + 1}" for i in range(2)]
            y = table["pc2"] if "pc2" in table else [0.0] * len(table)
            ax.scatter(table["pc1"], y, s=14, color="#4e79a7")
            ax.set_xlabel(x_title, fontsize=9)
            ax.set_ylabel(y_title, fontsize=9)
            ax.set_title(name, fontsize=10)
            ax.tick_params(labelsize=9)
            ax.grid(alpha=0.3)
        for ax in axes[len(panels) :]:
            ax.axis("off")
        fig.suptitle(title, fontsize=12)
    return fig
