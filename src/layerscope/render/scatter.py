"""Projected tokens: one description, :class:`ProjectionFigure`, drawn as an interactive plotly scatter and as a
PNG (labelled points, a colour and a line per set); and the static page of several projections."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

import pandas as pd
import plotly.graph_objects as go
from matplotlib.figure import Figure

from ..fonts import font_fallback
from .line_figure import PNG_TEXT_PT
from .palette import color_map
from .static import new_figure


def axis_titles(explained_ratio: list[float]) -> list[str]:
    """``["PC1 (34.1%)", "PC2 (12.0%)", ...]``."""
    return [f"PC{i + 1} ({100 * r:.1f}%)" for i, r in enumerate(explained_ratio)]


@dataclass
class ProjectionFigure:
    """A 2-D or 3-D scatter of ``table`` (columns ``set, label, pc1, pc2[, pc3]``), one dimension per value of
    ``explained_ratio``.

    Each set gets one colour and one legend entry; points carry their label as text; a line joins the points of
    a set in their order (0 -> 1 -> ... -> 9) when ``connect`` is True or names the set (an ordered set: digits,
    number words, months). :meth:`plotly` and :meth:`png` draw the same points, labels, colours and lines.
    """

    title: str
    table: pd.DataFrame
    explained_ratio: list[float]
    connect: bool | Collection[str] = True

    @property
    def dims(self) -> int:
        return len(self.explained_ratio)

    def joined(self, set_name) -> bool:
        """Whether a line joins the points of ``set_name``."""
        return self.connect is True or (not isinstance(self.connect, bool) and set_name in self.connect)

    def sets(self) -> list[tuple[str, pd.DataFrame]]:
        """``(set name, its rows)`` in the order the table meets them."""
        return [(str(name), group) for name, group in self.table.groupby("set", sort=False)]

    def colors(self) -> dict:
        return color_map(list(self.table["set"]))

    def plotly(self) -> go.Figure:
        """The interactive scatter: a click on a set's legend entry hides it."""
        dims = self.dims
        titles = axis_titles(self.explained_ratio)
        colors = self.colors()
        fig = go.Figure()
        for set_name, group in self.table.groupby("set", sort=False):
            joined = self.joined(set_name)
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
            title=dict(text=self.title, x=0.5),
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

    def png(self) -> Figure:
        """The static scatter (the legend outside the points), text at least :data:`PNG_TEXT_PT` points."""
        fig = new_figure(figsize=(8.5, 7), dpi=130, layout="constrained")
        with font_fallback(self):
            ax = fig.add_subplot(projection="3d") if self.dims == 3 else fig.add_subplot()
            self.draw(ax)
            ax.set_title(self.title, fontsize=PNG_TEXT_PT + 2)
            handles, labels = ax.get_legend_handles_labels()
            legend = fig.legend(handles, labels, loc="outside right upper", fontsize=PNG_TEXT_PT, frameon=False)
            legend.set_title("set", prop={"size": PNG_TEXT_PT})
        return fig

    def draw(self, ax, labels: bool = True) -> None:
        """Draw the points (and their labels, and the lines of joined sets) on a matplotlib axes: a 3-D one
        shows three dimensions, any other the first two."""
        pt = PNG_TEXT_PT
        dims = 3 if ax.name == "3d" else 2
        titles = [*axis_titles(self.explained_ratio[:dims]), "PC2"][:dims]
        colors = self.colors()
        for set_name, group in self.table.groupby("set", sort=False):
            coords = [
                group[f"pc{i + 1}"].to_numpy() if f"pc{i + 1}" in group else 0 * group["pc1"].to_numpy()
                for i in range(dims)
            ]
            color = colors[set_name]
            extra = dict(depthshade=False) if dims == 3 else {}
            ax.scatter(*coords, color=color, label=str(set_name), s=28 if labels else 14, **extra)
            if self.joined(set_name):
                ax.plot(*coords, color=color, linewidth=1, alpha=0.6)
            for i, label in enumerate(group["label"] if labels else []):
                ax.text(*(c[i] for c in coords), f" {label}", color=color, fontsize=pt)
        ax.set_xlabel(titles[0], fontsize=pt)
        ax.set_ylabel(titles[1], fontsize=pt)
        if dims == 3:
            ax.set_zlabel(titles[2], fontsize=pt)
        else:
            ax.set_aspect("equal", adjustable="datalim")
            ax.grid(alpha=0.3)
        ax.tick_params(labelsize=pt)


def projections_png(figures: dict[str, ProjectionFigure], *, title: str) -> Figure:
    """One 2-D scatter per figure side by side (``{panel title: figure}``), the points of each figure's
    :meth:`ProjectionFigure.draw` without their labels: the static page of figures that are one interactive
    figure each."""
    n = max(len(figures), 1)
    cols = min(n, 3)
    rows = -(-n // cols)
    fig = new_figure(figsize=(4.6 * cols, 4.2 * rows + 0.6), dpi=110, layout="constrained")
    with font_fallback(list(figures.values()), list(figures), title):
        axes = fig.subplots(rows, cols, squeeze=False).ravel()
        for ax, (name, figure) in zip(axes, figures.items()):
            figure.draw(ax, labels=False)
            ax.set_title(name, fontsize=PNG_TEXT_PT + 1)
        for ax in axes[len(figures) :]:
            ax.axis("off")
        fig.suptitle(title, fontsize=PNG_TEXT_PT + 3)
    return fig
