"""The deprecated file writers of ``render.scatter`` go through RunDir and still write the same files."""

from __future__ import annotations

import json

import plotly.graph_objects as go
import pytest

from layerscope.render.scatter import write_figure_spec, write_html


def test_deprecated_writers_still_write_through_rundir(tmp_path):
    fig = go.Figure(go.Scatter(x=[1, 2], y=[3, 4]))
    with pytest.warns(DeprecationWarning, match="RunDir"):
        write_html(fig, tmp_path / "sub" / "index.html")
    assert "Plotly.newPlot" in (tmp_path / "sub" / "index.html").read_text()
    assert json.loads((tmp_path / "sub" / "index.plotly.json").read_text())["data"][0]["x"] == [1, 2]
    with pytest.warns(DeprecationWarning):
        write_figure_spec(fig, tmp_path / "echo.plotly.json")
    assert json.loads((tmp_path / "echo.plotly.json").read_text())["data"][0]["y"] == [3, 4]
    assert not list(tmp_path.rglob("*.part"))
