"""One description of the per-layer projections of ``layers`` (the points of every model at every layer), drawn
as the interactive figure with a layer slider and as its PNGs: the grid of every layer and one figure per layer.

The HTML shows one layer at a time (:func:`~layerscope.render.layer_slider.layer_slider_figure`); a PNG cannot
move, so the grid lays every layer out at once (:func:`~layerscope.render.layer_grid.grid_figure`) and each layer
has a figure of its own (:func:`~layerscope.render.layer_grid.layer_figure`). All three read the same table,
colours and layer titles: a panel of the grid holds the points of the slider's frame at that layer.

Example:
    >>> fig = LayerProjectionFigure("categories across layers", projection, ratios, {"embed": "embed"}, True)
    >>> fig.plotly().write_html("index.html"); fig.png().savefig("grid.png"); fig.layer_png("6").savefig("6.png")
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
from matplotlib.figure import Figure

from ..fonts import font_fallback
from .layer_grid import grid_figure, layer_figure
from .layer_slider import layer_slider_figure


@dataclass
class LayerProjectionFigure:
    """``table``: ``model, layer, depth[, relative_depth], set, label, pc1..pcK`` (one row per point);
    ``ratios``: ``model, layer, ratio1..ratioK`` (each axis' variance share); ``titles``: a layer name's title
    (``embed``, ``block 6``); ``fixed_axes``: one range per panel for all layers (a basis shared by the layers)."""

    title: str
    table: pd.DataFrame
    ratios: pd.DataFrame
    titles: dict[str, str]
    fixed_axes: bool

    def _strings(self) -> list:
        """The strings the views draw (for :func:`~layerscope.fonts.font_fallback`)."""
        return [self.title, self.titles, self.table[["model", "layer", "set", "label"]]]

    def plotly(self):
        """The interactive figure: the models side by side, one layer at a time on a slider."""
        return layer_slider_figure(
            self.table, self.ratios, titles=self.titles, fixed_axes=self.fixed_axes, title=self.title
        )

    def png(self) -> Figure:
        """The grid: one small panel per (model, layer), the slider's frames laid out at once."""
        with font_fallback(self._strings()):
            return grid_figure(self.table, self.titles, title=self.title)

    def layer_png(self, layer: str) -> Figure:
        """The models side by side at ``layer`` (a name), points labelled: the slider's frame at that layer."""
        with font_fallback(self._strings()):
            return layer_figure(self.table, self.ratios, layer, title=self.titles.get(layer, layer))
