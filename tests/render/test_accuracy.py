"""The ablation figure: a line over blocks for a sweep, sorted bars for other configurations."""

from __future__ import annotations

import warnings

import pandas as pd

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
