"""The status of a sweep's models, drawn as a PNG where the experiment has no figure across models of its own."""

from __future__ import annotations

import pandas as pd

from layerscope.experiments.encode import EncodeConfig
from layerscope.experiments.sweep import SweepConfig, SweepResult
from layerscope.model_spec import ModelSpec
from layerscope.render.sweep import status_bars, status_figure


def _status() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "model": ["a", "b", "c"],
            "status": ["ok", "failed", "skipped"],
            "reason": ["", "no such file", ""],
            "seconds": [2.5, 0.1, 0.0],
        }
    )


def test_the_status_is_one_bar_per_model_in_its_state_both_ways():
    bars = status_bars(_status())
    drawn = {g.name: [v is not None for v in g.values] for g in bars.groups}
    assert bars.categories == ["a", "b", "c"]
    assert drawn == {"ok": [True, False, False], "failed": [False, True, False], "skipped": [False, False, True]}
    figure = status_figure(_status())
    assert [list(trace.x) for trace in figure.data] == [["a"], ["b"], ["c"]]
    assert "no such file" in str(figure.data[1].hovertext)
    assert len(bars.png().axes[0].patches) == 3


def test_a_sweep_without_a_figure_of_its_own_writes_the_status_png():
    config = SweepConfig(base=EncodeConfig(texts=("a", "b")), models=(ModelSpec(),))
    result = SweepResult(config=config, status=_status())
    assert set(result.figures()) == {"sweep"} and set(result.images()) == {"sweep"}
    assert result.images()["sweep"]().axes[0].patches
