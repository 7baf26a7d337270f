"""Heatmap figures: rows carry layer names on category axes; static versions are matplotlib Figures (no pyplot)."""

from __future__ import annotations

import sys

import numpy as np
from matplotlib.figure import Figure

from layerscope.render.heatmap import (
    ResidualPanel,
    lens_figure,
    lens_png,
    matrix_figure,
    matrix_png,
    residual_figure,
    residual_png,
)

NAMES = ["embed", "0", "1", "norm"]


def _panel(title="p"):
    values = np.arange(4 * 6, dtype=np.float32).reshape(4, 6) - 10
    return ResidualPanel(title, values, values.mean(1), np.sqrt((values**2).mean(1)))


def test_plotly_figures_keep_layer_names_as_categories():
    fig = residual_figure([_panel("a"), _panel("b")], NAMES, 5.0, "t")
    assert list(fig.data[1].y) == NAMES and fig.layout.yaxis.type == "category"
    matrices = {"linear CKA": np.eye(3), "mean cosine": np.eye(3)}
    fig = matrix_figure(matrices, NAMES[:3], "t", [1])
    assert list(fig.data[0].x) == NAMES[:3] and fig.layout.xaxis.type == "category"
    assert len(fig.layout.shapes) == 4  # a boundary: one vertical and one horizontal line per matrix
    fig = lens_figure(np.zeros((4, 2)), [["x", "y"]] * 4, ["12", "5+2="], NAMES, "t")
    assert list(fig.data[0].y) == NAMES and fig.layout.xaxis.type == "category"


def test_static_figures_are_figures_outside_pyplot():
    had_pyplot = "matplotlib.pyplot" in sys.modules
    figs = [
        residual_png([_panel()], NAMES, 5.0, "t"),
        matrix_png({"linear CKA": np.eye(3)}, NAMES[:3], "t", [1]),
        lens_png(np.zeros((4, 2)), [["x", "y"]] * 4, ["a", "b"], NAMES, "t"),
    ]
    assert all(type(f) is Figure for f in figs)
    assert [t.get_text() for t in figs[2].axes[0].get_yticklabels()] == NAMES
    assert [t.get_text() for t in figs[0].axes[0].get_yticklabels()] == NAMES
    if not had_pyplot:
        assert "matplotlib.pyplot" not in sys.modules


def test_tokens_are_shown_visibly():
    from layerscope.render.heatmap import visible_token

    assert visible_token(" the") == "␣the"
    assert visible_token("\n\n") == "\\n\\n"
    assert visible_token("\t\x01") == "\\t\\x01"
    assert visible_token("") == "∅"
    assert visible_token("東京 🙂") == "東京␣🙂"


def test_lens_marks_the_cells_whose_top1_is_the_target():
    import numpy as np

    from layerscope.render.heatmap import lens_figure, lens_png

    prob = np.array([[0.1, 0.9], [0.2, 0.3]])
    top = [[" a", "7"], ["\n", "b"]]
    hits = np.array([[False, True], [False, False]])
    fig = lens_figure(prob, top, ["p1", "p2"], ["embed", "0"], "t", hits=hits, hover=[["h"] * 2] * 2)
    assert [list(row) for row in fig.data[0].text] == [["␣a", "7"], ["\\n", "b"]]
    marker = fig.data[1]
    assert list(marker.x) == ["p2"] and list(marker.y) == ["embed"]
    image = lens_png(prob, top, ["p1", "p2"], ["embed", "0"], "t", hits=hits)
    assert len(image.axes[0].patches) == 1
