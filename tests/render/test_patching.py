"""Patching figures: each one description (a grid per part, lines over the blocks) drawn as HTML and PNG."""

from __future__ import annotations

import numpy as np
import pandas as pd
from png_checks import assert_text_inside_and_readable

from layerscope.render.patching import MARK, heads_grid, layer_lines, position_grid

TOKENS = ["<bos>", "When", " Mary", " and", " John", " went", "\n", " to", " the", " store", ",", " John", " gave"]
CHANGED = [2, 4]


def _cells() -> pd.DataFrame:
    """``patch.csv`` rows of a 3-block model: the residual stream at every position, the heads at every
    position (``head_positions="each"``), attention and MLP outputs; a few cells without a value."""
    rng = np.random.default_rng(0)
    rows = []
    for depth, layer in enumerate(["embed", "0", "1", "2"]):
        for p in range(len(TOKENS)):
            rows.append(dict(part="resid", layer=layer, depth=depth, position=p, head=None))
        if depth:
            for h in range(4):
                for p in range(3):
                    rows.append(dict(part="heads", layer=layer, depth=depth, position=p, head=h))
            for part in ("attn", "mlp"):
                for p in range(len(TOKENS)):
                    rows.append(dict(part=part, layer=layer, depth=depth, position=p, head=None))
    cells = pd.DataFrame(rows)
    cells["normalized"] = rng.normal(0.3, 0.6, len(cells))
    cells.loc[[5, 17], "normalized"] = np.nan  # clean and corrupt agreed there
    return cells


def _html_z(heat) -> np.ndarray:
    return np.array([[np.nan if v is None else v for v in row] for row in heat.z], dtype=float)


def _png_z(ax) -> np.ndarray:
    return np.ma.filled(ax.images[0].get_array().astype(float), np.nan)


def _same_grid(figure):
    """The PNG's image is the HTML heatmap's z (NaN where the HTML leaves a gap), on the same symmetric colour
    range, rows upward in both, with the HTML's row and column labels; returns both views."""
    html, png = figure.plotly(), figure.png()
    heat = html.data[0]
    ax = png.axes[0]
    np.testing.assert_array_equal(_png_z(ax), _html_z(heat))
    low, high = ax.images[0].get_clim()
    assert (low, high) == (html.layout.coloraxis.cmin, html.layout.coloraxis.cmax) and high == -low >= 1
    assert ax.images[0].origin == "lower" and html.layout.yaxis.autorange is True
    assert [t.get_text() for t in ax.get_yticklabels()] == list(heat.y)
    assert [t.get_text() for t in ax.get_xticklabels()] == list(heat.x)
    assert ax.get_xlabel() == html.layout.xaxis.title.text and ax.get_ylabel() == html.layout.yaxis.title.text
    assert_text_inside_and_readable(png)
    return html, png


def test_the_position_png_and_html_show_the_same_grid_and_frame_the_same_positions():
    cells = _cells()
    figure = position_grid(cells[cells["part"] == "resid"], TOKENS, CHANGED, title="resid " * 30)
    html, png = _same_grid(figure)
    assert list(html.data[0].y) == ["embed", "0", "1", "2"] and html.data[0].x[2] == f"2 {MARK}␣Mary"
    framed_html = sorted(round(s.x0 + 0.5) for s in html.layout.shapes)
    framed_png = sorted(round(p.get_x() + 0.5) for p in png.axes[0].patches)
    assert framed_html == framed_png == CHANGED
    red = [t.get_text() for t in png.axes[0].get_xticklabels() if t.get_fontweight() == "bold"]
    assert red == [html.data[0].x[p] for p in CHANGED]


def test_the_heads_png_and_html_show_the_same_grid():
    cells = _cells()
    html, _ = _same_grid(heads_grid(cells[cells["part"] == "heads"], title="heads"))
    assert list(html.data[0].x) == ["0", "1", "2", "3"] and list(html.data[0].y) == ["0", "1", "2"]
    heads = cells[cells["part"] == "heads"]
    expected = heads.groupby(["depth", "head"])["normalized"].max().unstack().to_numpy()
    np.testing.assert_array_equal(_html_z(html.data[0]), expected)


def test_the_layer_lines_png_and_html_show_the_same_lines():
    cells = _cells()
    figure = layer_lines(cells, title="the most any one position gives back, per block " * 2)
    html, png = figure.plotly(), figure.png()
    lines = png.axes[0].get_lines()
    assert [t.name for t in html.data] == ["attention output", "MLP output"]
    for trace, line in zip(html.data, lines):
        expected = cells[cells["part"] == ("attn" if trace.name.startswith("att") else "mlp")]
        expected = expected.groupby("depth")["normalized"].max()
        np.testing.assert_allclose(np.asarray(trace.y, dtype=float), expected.to_numpy())
        np.testing.assert_array_equal(line.get_ydata(), np.asarray(trace.y, dtype=float))
        assert [str(x) for x in trace.x] == ["0", "1", "2"] and line.get_color() == trace.line.color
    assert_text_inside_and_readable(png)
