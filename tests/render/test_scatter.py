"""The projection scatter: one description drawn as HTML and PNG."""

from __future__ import annotations

import numpy as np
import pandas as pd
from png_checks import assert_text_inside_and_readable, png_texts

from layerscope.render.scatter import ProjectionFigure, projections_png


def _table(dims: int) -> pd.DataFrame:
    rng = np.random.default_rng(dims)
    sets = [("digits", [str(d) for d in range(10)]), ("months", ["January", "February", "March", "April"])]
    rows = [(name, label) for name, labels in sets for label in labels]
    coords = rng.normal(size=(len(rows), dims))
    table = pd.DataFrame({"set": [r[0] for r in rows], "label": [r[1] for r in rows]})
    return table.assign(**{f"pc{i + 1}": coords[:, i] for i in range(dims)})


def _png_sets(ax, dims: int) -> dict[str, dict]:
    """Per set of a PNG axes: its points, colour, labels and whether a line joins them."""
    from matplotlib.colors import to_rgba

    found = {}
    for points in ax.collections:
        name = points.get_label()
        xyz = np.column_stack(points._offsets3d) if dims == 3 else points.get_offsets()
        found[name] = {"points": np.asarray(xyz, dtype=float), "color": points.get_facecolor()[0]}
    for name, entry in found.items():
        color = tuple(entry["color"])
        entry["labels"] = [t.get_text().strip() for t in ax.texts if to_rgba(t.get_color()) == color]
        entry["joined"] = any(to_rgba(line.get_color()) == color for line in ax.get_lines())
    return found


def test_the_projection_png_and_html_show_the_same_points_labels_colours_and_lines():
    """Both views are drawn from one :class:`ProjectionFigure`: per set, the PNG's points are the HTML trace's
    coordinates, its labels the trace's texts, its colour the trace's, and a line joins the points in both or in
    neither; the axis titles are the same."""
    from matplotlib.colors import to_rgba

    for dims in (2, 3):
        figure = ProjectionFigure("t", _table(dims), [0.5, 0.2, 0.1][:dims], connect={"digits"})
        html, png = figure.plotly(), figure.png()
        ax = png.axes[0]
        drawn = _png_sets(ax, dims)
        assert list(drawn) == [trace.name for trace in html.data] == ["digits", "months"]
        for trace in html.data:
            coords = [trace.x, trace.y] + ([trace.z] if dims == 3 else [])
            np.testing.assert_allclose(drawn[trace.name]["points"], np.column_stack(coords))
            assert drawn[trace.name]["labels"] == list(trace.text)
            assert tuple(drawn[trace.name]["color"]) == to_rgba(trace.marker.color)
            assert drawn[trace.name]["joined"] == ("lines" in trace.mode)
        axes = (
            [html.layout.scene.xaxis, html.layout.scene.yaxis] if dims == 3 else [html.layout.xaxis, html.layout.yaxis]
        )
        assert [a.title.text for a in axes] == [ax.get_xlabel(), ax.get_ylabel()]


def test_the_projection_png_text_is_at_least_9_points_and_inside_the_figure():
    figure = ProjectionFigure("tokens of digits and months " * 2, _table(2), [0.5, 0.2])
    assert_text_inside_and_readable(figure.png())
    three_d = png_texts(ProjectionFigure("3-D", _table(3), [0.5, 0.2, 0.1]).png())  # 3-D texts have no 2-D extent
    assert min(t.get_fontsize() for t in three_d) >= 9
    assert_text_inside_and_readable(projections_png({"a": figure, "b": figure}, title="stages"))
