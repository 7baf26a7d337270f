"""The report page: sections from run directories, safe embedding of figure specs, errors."""

from __future__ import annotations

import json
from html.parser import HTMLParser

import pytest

from layerscope.cli import main
from layerscope.errors import LayerscopeError
from layerscope.experiments.report import build_report


class _Scripts(HTMLParser):
    """Collects the text of every ``<script type="application/json">`` element, as a browser parses it."""

    def __init__(self):
        super().__init__()
        self.specs: list[str] = []
        self._inside = False

    def handle_starttag(self, tag, attrs):
        self._inside = tag == "script" and ("type", "application/json") in attrs
        if self._inside:
            self.specs.append("")

    def handle_endtag(self, tag):
        self._inside = False

    def handle_data(self, data):
        if self._inside:
            self.specs[-1] += data


def _run_dir(root, name, spec_text):
    run = root / name
    run.mkdir()
    (run / "run.json").write_text(json.dumps({"experiment": name, "models": [{"name": "tiny"}], "command": ["layerscope", name]}))
    (run / "index.plotly.json").write_text(spec_text)
    (run / "table.csv").write_text("a,b\n1,<b>x</b>\n")
    return run


def test_hostile_strings_in_a_figure_spec_stay_inside_it(tmp_path):
    hostile = {"data": [{"type": "scatter", "x": [1], "y": [2], "text": ["<!--<script>", "</script><p>"]}], "layout": {}}
    raw = json.dumps(hostile)  # not escaped the way plotly escapes: as another tool might write it
    runs = [_run_dir(tmp_path, "one", raw), _run_dir(tmp_path, "two", raw)]
    page = build_report(runs, tmp_path / "page.html").read_text()
    parser = _Scripts()
    parser.feed(page)
    assert [json.loads(spec) for spec in parser.specs] == [hostile, hostile]
    # Browsers end or swallow a script element at "</script" or "<!--<script>"; with no raw "<" neither can occur.
    assert all("<" not in spec for spec in parser.specs)
    assert "<b>x</b>" not in page and "&lt;b&gt;x&lt;/b&gt;" in page  # table cells are escaped
    assert page.count('<section id="run-') == 2
    assert "layerscope one" in page  # the command that reproduces the run


def test_any_subset_of_runs_and_a_directory_without_run_json(tmp_path, capsys):
    run = _run_dir(tmp_path, "only", json.dumps({"data": [], "layout": {}}))
    assert main(["report", str(run), "--out", str(tmp_path / "one.html")]) == 0
    with pytest.raises(LayerscopeError, match="has no run.json"):
        build_report([tmp_path], tmp_path / "bad.html")
    assert main(["report", str(tmp_path / "nothing"), "--out", str(tmp_path / "x.html")]) == 2
    assert "is not a layerscope run directory" in capsys.readouterr().err
