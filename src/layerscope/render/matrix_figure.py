"""One description of layer-by-layer matrices side by side (data and layout), drawn as plotly and as PNG.

A :class:`MatrixFigure` holds ``(L, L)`` matrices over the same layer labels and the phase boundaries;
:meth:`MatrixFigure.plotly` and :meth:`MatrixFigure.png` derive both views from it. A NaN cell is undefined
(e.g. CKA of a layer whose vectors are all alike): drawn gray with a note in both views, never as a value.

Example:
    >>> fig = MatrixFigure("layer-by-layer similarity", {"linear CKA": cka}, ["embed", "0", "1"], [1])
    >>> fig.plotly().write_html("layers.html"); fig.png().savefig("layers.png")
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass, field

import numpy as np

from ..fonts import font_fallback
from .heatmap import CHAR_WIDTH
from .line_figure import PNG_TEXT_PT

UNDEFINED_COLOR = "#c8c8c8"
MARK_COLOR = "#b2182b"
_MAX_TICKS = 20


@dataclass
class MatrixFigure:
    """``matrices``: ``{panel title: (L, L) float}`` over ``labels`` (``L`` layer names); ``boundaries``: the
    first layer index of every phase after the first (dotted lines); ``undefined_note``: said under the figure
    when a cell is NaN."""

    title: str
    matrices: dict[str, np.ndarray]
    labels: list[str]
    boundaries: list[int]
    undefined_note: str = "gray: undefined (the layer's vectors are all alike)"
    #: a grid that is not layer by layer: its column names (``labels`` then names the rows), axis titles and
    #: the colour bar's title
    columns: list[str] | None = None
    x_title: str = "layer"
    y_title: str = "layer"
    value_title: str = "similarity"
    #: the colour scale (a name both matplotlib and plotly know, e.g. ``viridis``, ``RdBu_r``) and its fixed
    #: ``(low, high)`` (None: fitted to the values)
    colors: str = "viridis"
    value_range: tuple[float, float] | None = None
    #: the first row at the bottom (as a stack of layers, embed under block 0) instead of the top
    rows_up: bool = False
    #: column indices framed in both views, their tick labels red and bold in the PNG
    marked_columns: list[int] = field(default_factory=list)
    #: the HTML's hover text (a plotly template) and height in pixels
    hover: str = "%{y} vs %{x}: %{z:.3f}"
    height: int = 560
    #: the most tick labels per axis in the PNG (every n-th label beyond it)
    max_ticks: int = _MAX_TICKS
    #: square cells in the PNG (else the cells fill the panel)
    square_cells: bool = True

    @property
    def column_labels(self) -> list[str]:
        return self.labels if self.columns is None else self.columns

    def has_undefined(self) -> bool:
        return any(np.isnan(np.asarray(m, dtype=float)).any() for m in self.matrices.values())

    def subtitle(self) -> str:
        return self.undefined_note if self.has_undefined() else ""

    def plotly(self):
        """The interactive figure (plotly ``go.Figure``); NaN cells gray, not coloured."""
        import plotly.graph_objects as go
        from plotly.subplots import make_subplots

        names = list(self.matrices)
        n = len(self.labels)
        fig = make_subplots(rows=1, cols=len(names), subplot_titles=names, horizontal_spacing=0.08)
        for col, name in enumerate(names, start=1):
            matrix = np.asarray(self.matrices[name], dtype=float)
            fig.add_trace(
                go.Heatmap(
                    z=[[None if np.isnan(v) else float(v) for v in row] for row in matrix],
                    x=self.column_labels,
                    y=self.labels,
                    coloraxis="coloraxis",
                    hovertemplate=self.hover + "<extra></extra>",
                    hoverongaps=False,
                ),
                row=1,
                col=col,
            )
            for b in self.boundaries:
                line = dict(
                    type="line", line=dict(color="black", width=1.5, dash="dot"), xref=f"x{col}", yref=f"y{col}"
                )
                fig.add_shape(**line, x0=b - 0.5, x1=b - 0.5, y0=-0.5, y1=n - 0.5)
                fig.add_shape(**line, y0=b - 0.5, y1=b - 0.5, x0=-0.5, x1=n - 0.5)
            for i in self.marked_columns:
                fig.add_shape(
                    type="rect",
                    line=dict(color=MARK_COLOR, width=2),
                    xref=f"x{col}",
                    yref=f"y{col}",
                    x0=i - 0.5,
                    x1=i + 0.5,
                    y0=-0.5,
                    y1=n - 0.5,
                )
        subtitle = self.subtitle()
        low, high = self.value_range or (None, None)
        fig.update_layout(
            title=dict(text=self.title + (f"<br><sup>{subtitle}</sup>" if subtitle else ""), x=0.5),
            template="plotly_white",
            plot_bgcolor=UNDEFINED_COLOR,
            coloraxis=dict(
                colorscale=self.colors,
                cmin=low,
                cmax=high,
                colorbar=dict(title=dict(text=self.value_title, side="right")),
            ),
            height=self.height,
            margin=dict(l=10, r=10, t=90, b=10),
        )
        fig.update_xaxes(type="category", title_text=self.x_title, showgrid=False)
        fig.update_yaxes(
            type="category", autorange=True if self.rows_up else "reversed", title_text=self.y_title, showgrid=False
        )
        return fig

    def png(self):
        """The static figure (matplotlib ``Figure``), text at least :data:`PNG_TEXT_PT` points, labels inside it."""
        import matplotlib
        from matplotlib.patches import Rectangle

        from .static import new_figure

        k = len(self.matrices)
        step = max(1, -(-len(self.labels) // self.max_ticks))
        ticks = range(0, len(self.labels), step)
        columns = self.column_labels
        column_step = max(1, -(-len(columns) // self.max_ticks))
        longest = max((len(c) for c in columns[::column_step]), default=1)
        # a panel grows with its tick labels: 0.18 inch per shown label, the longest column label under it
        width = max(5.2, 0.18 * len(columns[::column_step]) + 1.6)
        height = max(5.4, 0.18 * len(ticks) + 1.2 + longest * CHAR_WIDTH * PNG_TEXT_PT / 72)
        fig = new_figure(figsize=(width * k + 0.6, height), dpi=110, layout="constrained")
        cmap = matplotlib.colormaps[self.colors].with_extremes(bad=UNDEFINED_COLOR)
        low, high = self.value_range or (None, None)
        with font_fallback(self):
            axes = fig.subplots(1, k, squeeze=False)[0]
            for ax, (name, matrix) in zip(axes, self.matrices.items()):
                shown = np.ma.masked_invalid(np.asarray(matrix, dtype=float))
                image = ax.imshow(
                    shown,
                    cmap=cmap,
                    vmin=low,
                    vmax=high,
                    interpolation="nearest",
                    aspect="equal" if self.square_cells else "auto",
                    origin="lower" if self.rows_up else "upper",
                )
                ax.set_title(name, fontsize=PNG_TEXT_PT + 1)
                column_ticks = range(0, len(columns), column_step)
                ax.set_xticks(column_ticks, columns[::column_step], rotation=90)
                ax.set_yticks(ticks, self.labels[::step])
                ax.tick_params(labelsize=PNG_TEXT_PT)
                for i in self.marked_columns:
                    box = Rectangle((i - 0.5, -0.5), 1, len(self.labels), fill=False, edgecolor=MARK_COLOR, lw=1.5)
                    ax.add_patch(box)
                    if i in column_ticks:
                        label = ax.get_xticklabels()[column_ticks.index(i)]
                        label.set_color(MARK_COLOR)
                        label.set_fontweight("bold")
                ax.set_xlabel(self.x_title, fontsize=PNG_TEXT_PT)
                ax.set_ylabel(self.y_title, fontsize=PNG_TEXT_PT)
                for b in self.boundaries:
                    ax.axvline(b - 0.5, color="white", linestyle=":", linewidth=1.2)
                    ax.axhline(b - 0.5, color="white", linestyle=":", linewidth=1.2)
                fig.colorbar(image, ax=ax, shrink=0.8).ax.tick_params(labelsize=PNG_TEXT_PT)
            chars = max(30, int((width * k + 0.6) * 72 / (CHAR_WIDTH * (PNG_TEXT_PT + 3))) - 4)
            fig.suptitle(textwrap.fill(self.title, chars), fontsize=PNG_TEXT_PT + 3)
            if self.has_undefined():
                fig.supxlabel(self.subtitle(), fontsize=PNG_TEXT_PT, color="#444")
        return fig


def matrix_figure(matrices: dict[str, np.ndarray], labels: list[str], title: str, boundaries: list[int]):
    """Layer-by-layer similarity matrices side by side, phase boundaries dotted (plotly)."""
    return MatrixFigure(title, matrices, labels, boundaries).plotly()


def matrix_png(matrices: dict[str, np.ndarray], labels: list[str], title: str, boundaries: list[int]):
    """:func:`matrix_figure` as a PNG (matplotlib)."""
    return MatrixFigure(title, matrices, labels, boundaries).png()
