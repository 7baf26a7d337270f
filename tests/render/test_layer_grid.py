"""The grid of per-layer projections: readable text at the size it is written."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from layerscope.render.layer_grid import grid_figure, metrics_figure
from layerscope.render.line_figure import PNG_TEXT_PT


def _projection(depths: dict[str, int]) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    rows = []
    for model, n in depths.items():
        for d in range(n + 1):
            layer = "embed" if d == 0 else str(d - 1)
            for s in ("digits", "colors"):
                for k in range(4):
                    rows.append(
                        dict(
                            model=model,
                            layer=layer,
                            depth=d,
                            relative_depth=d / n,
                            set=s,
                            label=f"{s}{k}",
                            pc1=rng.normal(),
                            pc2=rng.normal(),
                        )
                    )
    return pd.DataFrame(rows)


def _min_text_pt(fig) -> float:
    texts = fig.findobj(lambda a: hasattr(a, "get_fontsize") and hasattr(a, "get_text"))
    return min(t.get_fontsize() for t in texts if t.get_text())


@pytest.mark.parametrize("depths", [{"a": 18, "b": 18}, {"a": 18, "b": 12}])
def test_a_two_model_grid_has_no_text_under_nine_points_and_fits_a_page(depths):
    fig = grid_figure(_projection(depths), {"embed": "embed"}, title="t")
    assert _min_text_pt(fig) >= PNG_TEXT_PT
    width, height = fig.get_size_inches() * fig.dpi
    assert width <= 2000 and height <= 2000


def test_metric_curves_have_no_text_under_nine_points():
    metrics = pd.DataFrame({"model": ["a"] * 5, "layer": ["embed", "0", "1", "2", "3"], "depth": range(5)})
    metrics["silhouette"] = [0.0, 0.1, 0.2, 0.3, 0.2]
    assert _min_text_pt(metrics_figure(metrics, title="t")) >= PNG_TEXT_PT
