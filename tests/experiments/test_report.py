"""The report page: sections from run directories, safe embedding of figure specs, errors; its config and API."""

from __future__ import annotations

import json
from html.parser import HTMLParser

import pytest

import layerscope
from layerscope.cli import main
from layerscope.errors import LayerscopeError
from layerscope.experiment import ConfigError
from layerscope.experiments.report import ReportConfig, ReportResult, build_report


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
    (run / "run.json").write_text(
        json.dumps({"experiment": name, "models": [{"name": "tiny"}], "command": ["layerscope", name]})
    )
    (run / "index.plotly.json").write_text(spec_text)
    (run / "table.csv").write_text("a,b\n1,<b>x</b>\n")
    return run


def test_hostile_strings_in_a_figure_spec_stay_inside_it(tmp_path):
    hostile = {
        "data": [{"type": "scatter", "x": [1], "y": [2], "text": ["<!--<script>", "</script><p>"]}],
        "layout": {},
    }
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


# ----- the protocol: config, command line, Python API ----------------------------------------------


def _reparsed(config):
    from layerscope.cli.main import build_parser
    from layerscope.cli.report_command import config as config_from_args

    argv = config.command()
    assert argv[:2] == ["layerscope", "report"]
    return config_from_args(build_parser().parse_args(argv[1:]))


@pytest.mark.parametrize(
    "fields",
    [{}, {"out": "pages/my page.html"}, {"title": "a <b>title</b>, with spaces"}, {"out": "p.html", "title": "T"}],
)
def test_command_reparsed_by_the_cli_gives_the_same_config(fields):
    config = ReportConfig(run_dirs=("runs/a", "runs/b c"), **fields)
    assert _reparsed(config) == config


def test_bad_values_name_the_parameter_in_python_and_the_flag_on_the_command_line(tmp_path, capsys):
    run = _run_dir(tmp_path, "one", json.dumps({"data": [], "layout": {}}))
    with pytest.raises(ConfigError, match=r"^out=.* is a directory; give a file name"):
        layerscope.report([run], out=tmp_path)
    with pytest.raises(ConfigError, match=r"^run_dirs=.*nothing' is not a layerscope run directory"):
        layerscope.report([run, tmp_path / "nothing"], out=tmp_path / "x.html")
    with pytest.raises(ConfigError, match=r"^run_dirs=\(\) is empty"):
        layerscope.report([], out=tmp_path / "x.html")
    assert main(["report", str(run), "--out", str(tmp_path)]) == 2
    assert (
        capsys.readouterr().err.strip()
        == f"layerscope: error: --out {tmp_path} is a directory; give a file name for the page"
    )
    assert not (tmp_path / "x.html").exists()


def test_python_api_writes_the_page_atomically_and_returns_the_result(tmp_path, capsys):
    runs = [_run_dir(tmp_path, "one", json.dumps({"data": [], "layout": {}})), _run_dir(tmp_path, "two", "{}")]
    result = layerscope.report(runs, out=tmp_path / "pages" / "page.html", title="<i>mine</i>")
    assert isinstance(result, ReportResult) and [s.experiment for s in result.sections] == ["one", "two"]
    page = (tmp_path / "pages" / "page.html").read_text()
    assert page == result.html() and "<i>mine</i>" not in page and "<title>&lt;i&gt;mine&lt;/i&gt;</title>" in page
    assert not list((tmp_path / "pages").glob(".*.part"))
    assert "2 runs: one, two" in repr(result)
    assert main(["report", *map(str, runs), "--out", str(tmp_path / "cli.html"), "--title", "<i>mine</i>"]) == 0
    assert capsys.readouterr().out.strip() == str(tmp_path / "cli.html")
    assert (tmp_path / "cli.html").read_text() == page


def test_a_real_layout_run_in_the_report(tmp_path):
    import numpy as np
    from safetensors.numpy import save_file

    save_file({"w.<b>": np.zeros((2, 3), np.float32)}, str(tmp_path / "m.safetensors"))
    layerscope.layout(tmp_path / "m.safetensors", out=tmp_path / "run")
    page = layerscope.report([tmp_path / "run"], out=tmp_path / "page.html").html()
    assert 'data-experiment="layout"' in page and 'data-figure="treemap"' in page
    assert "layerscope layout " in page
    parser = _Scripts()
    parser.feed(page)
    assert len(parser.specs) == 1 and json.loads(parser.specs[0])["data"][0]["type"] == "treemap"
