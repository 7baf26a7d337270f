"""One line-figure description, drawn as plotly and as PNG: the same numbers, log axes that leave zero out."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from layerscope.render.compare import error_lines
from layerscope.render.line_figure import PNG_TEXT_PT, Line, LineFigure, Panel
from layerscope.render.lines import layer_lines
from layerscope.render.sweep import ablation_curves, depth_lines

LAYERS = ["embed", "0", "1", "2"]


def _errors() -> pd.DataFrame:
    """A Q8_0 copy read from the same embedding: error exactly 0 at ``embed``, then growing."""
    return pd.DataFrame(
        {
            "model": ["q8"] * 4,
            "layer": LAYERS,
            "relative_error": [0.0, 1e-3, 4e-3, 2e-2],
            "cosine": [1.0, 0.99999, 0.9999, 0.999],
        }
    )


def _texts(fig):
    return [t for t in fig.findobj(lambda a: hasattr(a, "get_text") and hasattr(a, "get_fontsize")) if t.get_text()]


def test_a_zero_on_a_log_axis_is_left_out_of_both_views_not_drawn_to_the_bottom():
    figure = error_lines(_errors(), title="t")
    plotly_y = figure.plotly().data[0].y
    assert plotly_y[0] is None and plotly_y[1:] == (1e-3, 4e-3, 2e-2)
    png = figure.png()
    ax = png.axes[0]
    assert ax.get_yscale() == "log"
    y = ax.lines[0].get_ydata()
    assert math.isnan(y[0]) and list(y[1:]) == [1e-3, 4e-3, 2e-2]
    # the lowest point drawn is the smallest positive error: nothing reaches below it
    assert ax.get_ylim()[0] > 1e-4
    assert "1 zero value not drawn" in ax.get_title()


def test_both_views_draw_the_same_numbers_names_and_titles():
    table = pd.DataFrame({"model": ["a"] * 4 + ["b"] * 4, "layer": LAYERS * 2, "norm": np.arange(1.0, 9.0)})
    figure = layer_lines(table, {"norm": "mean residual norm"}, title="scale", log={"norm"})
    interactive, png = figure.plotly(), figure.png()
    assert [trace.name for trace in interactive.data] == ["a", "b"]
    assert [line.get_label() for line in png.axes[0].lines] == ["a", "b"]
    for trace, line in zip(interactive.data, png.axes[0].lines):
        assert list(trace.y) == list(line.get_ydata())
        assert list(trace.x) == LAYERS
    assert [t.get_text() for t in png.axes[0].get_xticklabels()] == LAYERS
    assert interactive.layout.yaxis.type == "log" and png.axes[0].get_yscale() == "log"
    assert png.get_suptitle() == "scale" and interactive.layout.title.text == "scale"


def test_png_text_is_at_least_nine_points_and_the_figure_fits_a_page():
    table = pd.DataFrame({"model": ["a"] * 19, "layer": ["embed", *map(str, range(18))], "x": range(19), "y": 1.0})
    png = layer_lines(table, {"x": "x", "y": "y"}, title="two panels").png()
    sizes = [t.get_fontsize() for t in _texts(png)]
    assert sizes and min(sizes) >= PNG_TEXT_PT
    width, height = png.get_size_inches() * png.dpi
    assert width <= 1400 and height <= 600


def test_depth_lines_and_ablation_curves_are_descriptions_with_both_views():
    metrics = pd.DataFrame(
        {"model": ["a"] * 3, "layer": ["embed", "0", "1"], "relative_depth": [0, 0.5, 1.0], "silhouette": [0, 0.2, 0.4]}
    )
    lines = depth_lines(metrics, {"silhouette": "silhouette"}, title="t")
    assert list(lines.png().axes[0].lines[0].get_xdata()) == [0, 0.5, 1.0]
    assert list(lines.plotly().data[0].x) == [0, 0.5, 1.0]
    table = pd.DataFrame(
        {
            "model": ["a"] * 3,
            "config": ["baseline", "drop 0", "drop 1"],
            "relative_depth": [None, 0.5, 1.0],
            "accuracy": [0.9, 0.4, 0.8],
        }
    )
    curves = ablation_curves(table, title="t")
    png_lines = curves.png().axes[0].lines
    assert [list(line.get_ydata()) for line in png_lines] == [[0.4, 0.8], [0.9, 0.9]]
    assert png_lines[1].get_linestyle() == "--"
    assert [trace.showlegend for trace in curves.plotly().data] == [True, False]


def test_a_missing_value_is_a_gap_on_a_linear_axis_too():
    figure = LineFigure("t", [Panel("p", [Line("a", ["x", "y", "z"], [1.0, float("nan"), 3.0], "#000")])])
    assert figure.plotly().data[0].y == (1.0, None, 3.0)
    assert math.isnan(figure.png().axes[0].lines[0].get_ydata()[1])
