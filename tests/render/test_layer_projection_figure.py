"""layers' projections: one description drawn as the slider (HTML), the grid and the per-layer PNGs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from matplotlib.colors import to_hex
from png_checks import assert_text_inside_and_readable

from layerscope.render.layer_projection_figure import LayerProjectionFigure


def _projection(depths: dict[str, int]) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    rows = []
    for model, n in depths.items():
        for d in range(n + 1):
            layer = "embed" if d == 0 else str(d - 1)
            for s, labels in (("digits", ["1", "2", "3"]), ("日本語", ["東", "京"])):
                for label in labels:
                    rows.append(
                        dict(model=model, layer=layer, depth=d, relative_depth=d / n, set=s, label=label)
                        | dict(pc1=rng.normal(), pc2=rng.normal())
                    )
    return pd.DataFrame(rows)


def _figure(depths: dict[str, int]) -> LayerProjectionFigure:
    table = _projection(depths)
    ratios = table[["model", "layer"]].drop_duplicates().assign(ratio1=0.4, ratio2=0.2)
    titles = {"embed": "embed", **{str(b): f"block {b}" for b in range(max(depths.values()))}}
    return LayerProjectionFigure("digits and 日本語 across layers", table, ratios, titles, fixed_axes=False)


def _points(x, y) -> tuple:
    return tuple(sorted((round(float(a), 9), round(float(b), 9)) for a, b in zip(x, y)))


def _frame_points(html, models: list[str]) -> set:
    """``(model, set, colour, points)`` of every trace of every slider frame."""
    found = set()
    for frame in html.frames:
        for trace in frame.data:
            model = models[int(trace.xaxis[1:] or 1) - 1]
            found.add((model, trace.name, trace.marker.color, _points(trace.x, trace.y)))
    return found


def _panel_points(ax, model: str) -> set:
    return {(model, c.get_label(), to_hex(c.get_facecolor()[0]), _points(*c.get_offsets().T)) for c in ax.collections}


@pytest.mark.parametrize("depths", [{"a": 4, "b": 4}, {"a": 6, "b": 3}])
def test_the_grid_png_shows_the_slider_frames_points_and_colours(depths):
    """Every panel of the grid holds the points and colours of one model in one slider frame, and every frame's
    points are in a panel: the PNG lays out at once what the HTML shows one layer at a time."""
    figure = _figure(depths)
    html, png = figure.plotly(), figure.png()
    models = list(depths)
    panels = [ax for ax in png.axes if ax.collections]
    drawn = set().union(*(_panel_points(ax, ax.get_title().split("\n")[0]) for ax in panels))
    assert drawn == _frame_points(html, models)
    assert len(panels) == sum(n + 1 for n in depths.values())
    assert_text_inside_and_readable(png)


def test_a_layer_png_shows_the_slider_frame_of_that_layer():
    figure = _figure({"a": 4, "b": 4})
    html = figure.plotly()
    frame = next(f for f in html.frames if f.name == "2")
    png = figure.layer_png("2")
    drawn = set().union(*(_panel_points(ax, ax.get_title()) for ax in png.axes if ax.collections))
    shown = {(m, s, c, p) for m, s, c, p in _frame_points(html.update(frames=[frame]), ["a", "b"])}
    assert drawn == shown and png.texts[0].get_text() == "block 2"
    labels = {t.get_text().strip() for ax in png.axes for t in ax.texts}
    assert labels == {"1", "2", "3", "東", "京"}
    assert_text_inside_and_readable(png)
