"""The ablation figure: a line over blocks for a sweep, sorted bars for other configurations."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from png_checks import assert_text_inside_and_readable

from layerscope.render.accuracy import accuracy_figure, accuracy_png


def _table(configs: list[tuple[str, str, float]], chance: float | None = None) -> pd.DataFrame:
    rows = [{"config": "baseline", "removed_layers": "", "accuracy": 0.6, "accuracy[+]": 0.7}]
    rows += [{"config": c, "removed_layers": r, "accuracy": a, "accuracy[+]": a / 2} for c, r, a in configs]
    table = pd.DataFrame(rows)
    if chance is not None:
        table["chance"] = chance
    return table


def test_a_sweep_is_a_line_over_the_block_number():
    table = _table([("drop 2", "2", 0.3), ("drop 0", "0", 0.1), ("drop 1", "1", 0.5)], chance=0.1)
    fig = accuracy_figure(table, ["+"], title="t")
    main = fig.data[0]
    assert main.type == "scatter" and list(main.x) == [0, 1, 2] and list(main.y) == [0.1, 0.5, 0.3]
    assert list(main.customdata) == ["drop 0", "drop 1", "drop 2"]
    texts = [a.text for a in fig.layout.annotations]
    assert "baseline 0.600" in texts and "chance 0.100" in texts
    assert fig.layout.legend.x > 1  # outside the data


def test_other_configurations_are_sorted_bars_without_lines():
    table = _table([("drop 4,5", "4,5", 0.4), ("drop 2-3", "2,3", 0.2), ("drop 7", "7", 0.5)])
    fig = accuracy_figure(table, ["+"], title="t")
    main = fig.data[0]
    assert main.type == "bar" and main.orientation == "h"
    assert list(main.y) == ["drop 2-3", "drop 4,5", "drop 7"] and list(main.x) == [0.2, 0.4, 0.5]
    assert all(trace.type == "bar" for trace in fig.data)


def test_png_has_no_warnings_and_its_legend_is_outside():
    table = _table([("drop 0", "0", 0.1), ("drop 1", "1", 0.5)], chance=0.25)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fig = accuracy_png(table, ["+"], title="a title")
        fig.canvas.draw() if hasattr(fig.canvas, "draw") else None
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "baseline 0.600" in labels and "chance 0.250" in labels
    assert ax.get_legend().get_bbox_to_anchor().x0 > ax.get_window_extent().x1 - 1


def _with_ci(table: pd.DataFrame) -> pd.DataFrame:
    return table.assign(ci_low=table["accuracy"] - 0.05, ci_high=table["accuracy"] + 0.05)


def _marks(fig) -> dict[str, float]:
    """``{"baseline": value, "chance": value}`` of an HTML figure's marked lines."""
    values = {}
    for shape, note in zip([s for s in fig.layout.shapes if s.type == "line"], fig.layout.annotations):
        values[note.text.split()[0]] = shape.y0 if shape.y0 == shape.y1 else shape.x0
    return values


def test_the_accuracy_png_and_html_show_the_same_series_marks_and_intervals():
    """Both views are drawn from one :class:`AccuracyFigure`: the PNG's lines (or bars) are the HTML's visible
    series, point for point; its baseline and chance lines and its interval bands are the HTML's."""
    from matplotlib.collections import PolyCollection

    from layerscope.render.accuracy import AccuracyFigure

    sweep = _with_ci(_table([("drop 2", "2", 0.3), ("drop 0", "0", 0.1), ("drop 1", "1", 0.5)], chance=0.1))
    bars = _with_ci(_table([("drop 4,5", "4,5", 0.4), ("drop 2-3", "2,3", 0.2), ("drop 7", "7", 0.5)]))
    for table in (sweep, bars):
        figure = AccuracyFigure.of(table, ["+"], title="t")
        html, ax = figure.plotly(), figure.png().axes[0]
        shown = [t for t in html.data if t.visible is not False and t.visible != "legendonly" and t.name]
        legend = {t.get_text() for t in ax.get_legend().get_texts()}
        if figure.sweep:
            lines = [t for t in shown if t.mode == "lines+markers"]
            drawn = [line for line in ax.get_lines() if not line.get_label().startswith(("baseline", "chance"))]
            assert [(list(t.x), list(t.y)) for t in lines] == [
                (list(line.get_xdata()), list(line.get_ydata())) for line in drawn
            ]
            bands = [t for t in shown if t.fill == "tonexty"]
            polys = [c for c in ax.collections if isinstance(c, PolyCollection)]
            assert len(bands) == len(polys) == 1 and bands[0].name in legend
            low, high = [np.asarray(v) for v in zip(*bands[0].customdata)]
            vertices = polys[0].get_paths()[0].vertices
            assert np.isclose(vertices[:, 1].min(), low.min()) and np.isclose(vertices[:, 1].max(), high.max())
            marked = {line.get_label().split()[0]: line.get_ydata()[0] for line in ax.get_lines() if line not in drawn}
            assert len(marked) == 2
        else:
            (main,) = [t for t in shown if t.type == "bar"]
            assert [p.get_width() for p in ax.patches if p.get_height() < 1] == list(main.x)
            assert [t.get_text() for t in ax.get_yticklabels()] == list(main.y)
            marks = [line for line in ax.get_lines() if line.get_label().startswith(("baseline", "chance"))]
            marked = {line.get_label().split()[0]: line.get_xdata()[0] for line in marks}
        assert marked == _marks(html)
        assert {f"{name} {value:.3f}" for name, value in marked.items()} <= legend


def test_the_accuracy_png_text_is_at_least_9_points_and_inside_the_figure():
    from layerscope.render.accuracy import AccuracyFigure

    many = [(f"drop {i},{i + 1}", f"{i},{i + 1}", i / 20) for i in range(12)]
    for table in (_table([("drop 0", "0", 0.1), ("drop 1", "1", 0.5)], chance=0.25), _with_ci(_table(many))):
        assert_text_inside_and_readable(AccuracyFigure.of(table, ["+"], title="a long title " * 8).png())
