"""The sensitivity figures: the (block x kind) grid puts each part's share in its cell, a missing part undefined."""

from __future__ import annotations

import numpy as np
import pandas as pd

from layerscope.render.sensitivity import kl_removed_grid, size_curve


def test_the_grid_puts_each_share_in_its_cell():
    parts = pd.DataFrame(
        {
            "block": pd.array([None, 0, 0, 1], dtype="Int64"),
            "kind": ["embed", "q_proj", "down_proj", "q_proj"],
            "share_removed": [0.1, 0.2, 0.3, 0.4],
        }
    )
    figure = kl_removed_grid(parts, ["q_proj", "down_proj"], title="t")
    grid = figure.matrices["share of the KL removed"]
    assert figure.labels == ["0", "1"] and figure.column_labels == ["q_proj", "down_proj"]
    np.testing.assert_array_equal(grid, [[0.2, 0.3], [0.4, np.nan]])
    heatmap = figure.plotly().data[0]
    assert list(heatmap.x) == ["q_proj", "down_proj"] and heatmap.z[0][1] == 0.3 and heatmap.z[1][1] is None
    assert figure.png().axes[0].get_xlabel() == "tensor kind"


def test_the_curve_has_one_line_per_method_in_size_order():
    curve = pd.DataFrame(
        {
            "method": ["uniform", "uniform", "recipe", "recipe"],
            "label": ["4-bit", "8-bit", "+5.0%", "+1.0%"],
            "relative_size": [1.0, 1.8, 1.05, 1.01],
            "kl": [0.5, 0.01, 0.3, 0.4],
        }
    )
    lines = size_curve(curve, title="t").panels[0].lines
    assert [line.name for line in lines] == ["uniform", "recipe"]
    assert list(lines[1].x) == [1.01, 1.05] and list(lines[1].y) == [0.4, 0.3]
