"""The report page: sections from run directories, safe embedding of figure specs, errors; its config and API."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

import layerscope
from layerscope.cli import main
from layerscope.errors import LayerscopeError
from layerscope.experiment import ConfigError
from layerscope.experiments.report import ReportConfig, ReportResult


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
    layerscope.report(runs, out=tmp_path / "page")
    page = (tmp_path / "page" / "report.html").read_text()
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
    assert main(["report", str(run), "--out", str(tmp_path / "one")]) == 0
    with pytest.raises(LayerscopeError, match="has no run.json"):
        layerscope.report([tmp_path], out=tmp_path / "bad")
    assert main(["report", str(tmp_path / "nothing"), "--out", str(tmp_path / "x")]) == 2
    assert "is not a layerscope run directory" in capsys.readouterr().err


# ----- the protocol: config, command line, Python API ----------------------------------------------


def _reparsed(config):
    from layerscope.cli.declared import parse

    argv = config.command()
    assert argv[:2] == ["layerscope", "report"]
    return parse(argv)


@pytest.mark.parametrize(
    "fields",
    [{}, {"title": "a <b>title</b>, with spaces"}, {"title": "T"}],
)
def test_command_reparsed_by_the_cli_gives_the_same_config(fields):
    config = ReportConfig(run_dirs=("runs/a", "runs/b c"), **fields)
    assert _reparsed(config) == config


def test_bad_values_name_the_parameter_in_python_and_the_flag_on_the_command_line(tmp_path, capsys):
    run = _run_dir(tmp_path, "one", json.dumps({"data": [], "layout": {}}))
    with pytest.raises(LayerscopeError, match=r"^'.*page.html' names a page; a report writes a run directory"):
        layerscope.report([run], out=tmp_path / "page.html")
    with pytest.raises(ConfigError, match=r"^run_dirs=.*nothing' is not a layerscope run directory"):
        layerscope.report([run, tmp_path / "nothing"], out=tmp_path / "x")
    with pytest.raises(ConfigError, match=r"^run_dirs=\(\) is empty"):
        layerscope.report([], out=tmp_path / "x")
    assert main(["report", str(run), "--out", str(tmp_path / "page.html")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("layerscope") and "page.html' names a page; a report writes a run directory" in err
    assert len(err.splitlines()) == 1 and not (tmp_path / "page.html").exists() and not (tmp_path / "x").exists()


def test_python_api_writes_the_page_atomically_and_returns_the_result(tmp_path, capsys):
    runs = [_run_dir(tmp_path, "one", json.dumps({"data": [], "layout": {}})), _run_dir(tmp_path, "two", "{}")]
    result = layerscope.report(runs, out=tmp_path / "pages" / "page", title="<i>mine</i>")
    assert isinstance(result, ReportResult) and [s.experiment for s in result.sections] == ["one", "two"]
    page = (tmp_path / "pages" / "page" / "report.html").read_text()
    assert page == result.html() and "<i>mine</i>" not in page and "<title>&lt;i&gt;mine&lt;/i&gt;</title>" in page
    assert not list((tmp_path / "pages").glob(".*.part"))
    assert "2 runs: one, two" in repr(result)
    assert main(["report", *map(str, runs), "--out", str(tmp_path / "cli"), "--title", "<i>mine</i>"]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] == str(tmp_path / "cli" / "report.html")
    assert (tmp_path / "cli" / "report.html").read_text() == page


def test_a_real_layout_run_in_the_report(tmp_path):
    import numpy as np
    from safetensors.numpy import save_file

    save_file({"w.<b>": np.zeros((2, 3), np.float32)}, str(tmp_path / "m.safetensors"))
    layerscope.layout(tmp_path / "m.safetensors", out=tmp_path / "run")
    page = layerscope.report([tmp_path / "run"], out=tmp_path / "page").html()
    assert 'data-experiment="layout"' in page and 'data-figure="treemap"' in page
    assert "layerscope layout " in page
    parser = _Scripts()
    parser.feed(page)
    assert len(parser.specs) == 1 and json.loads(parser.specs[0])["data"][0]["type"] == "treemap"


# ----- safety: only regular files inside the run directory, every value escaped (issue 13) -------------------


class _Tags(HTMLParser):
    """Every start tag and its attributes, as a browser parses the page."""

    def __init__(self):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


def _page_and_warnings(runs, out):
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        page = layerscope.report(runs, out=out).html()
    return page, [str(w.message) for w in caught]


def test_links_that_leave_the_run_directory_are_skipped_with_a_warning(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.csv").write_text("secret\nSECRET-CSV-ROW\n")
    (outside / "secret.md").write_text("SECRET-MARKDOWN")
    (outside / "secret.plotly.json").write_text(json.dumps({"data": [{"type": "bar", "name": "SECRET-SPEC"}]}))
    run = _run_dir(tmp_path, "one", json.dumps({"data": [], "layout": {}}))
    (run / "leak.csv").symlink_to(outside / "secret.csv")
    (run / "leak.md").symlink_to(outside / "secret.md")
    (run / "leak.plotly.json").symlink_to(outside / "secret.plotly.json")
    (run / "inside.csv").symlink_to(run / "table.csv")  # a link that stays inside is read
    page, warned = _page_and_warnings([run], tmp_path / "page")
    assert "SECRET" not in page
    assert sorted(w.split("/")[-1] for w in warned) == [
        f"{name}': a link that leads out of the run directory" for name in ("leak.csv", "leak.md", "leak.plotly.json")
    ]
    assert "inside.csv (1 rows)" in page and "table.csv (1 rows)" in page
    (outside / "run.json").write_text(json.dumps({"experiment": "SECRET"}))
    linked = tmp_path / "linked"
    linked.mkdir()
    (linked / "run.json").symlink_to(outside / "run.json")
    with pytest.raises(LayerscopeError, match="its run.json is a link that leads out of the run directory"):
        layerscope.report([linked], out=tmp_path / "linked-page")


def test_a_fifo_named_like_a_table_or_figure_never_hangs_the_report(tmp_path):
    import os
    import subprocess
    import sys

    run = _run_dir(tmp_path, "one", json.dumps({"data": [], "layout": {}}))
    for name in ("fifo.csv", "fifo.plotly.json", "fifo.md", "fifo.png"):
        os.mkfifo(run / name)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run(
        [sys.executable, "-m", "layerscope", "report", str(run), "--out", str(tmp_path / "page")],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    skipped = sorted(line for line in done.stderr.splitlines() if line.startswith("warning: report: skipped"))
    assert len(skipped) == 4 and all(line.endswith("': not a regular file") for line in skipped)
    assert (tmp_path / "page" / "report.html").read_text().count('class="figure"') == 1
    # a FIFO as run.json: one line, exit 2, no hang
    bad = tmp_path / "bad"
    bad.mkdir()
    os.mkfifo(bad / "run.json")
    done = subprocess.run(
        [sys.executable, "-m", "layerscope", "report", str(bad), "--out", str(tmp_path / "bad")],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(
    "malformed",
    ['{"data": [1, 2', "", "[]", '{"data": 5}', '{"data": [], "layout": []}', '{"data": ["x"]}', "\xff\xfe"],
)
def test_a_malformed_figure_spec_is_skipped_with_a_warning_and_the_rest_renders(tmp_path, malformed):
    run = _run_dir(tmp_path, "one", json.dumps({"data": [{"type": "bar", "y": [1]}], "layout": {}}))
    (run / "broken.plotly.json").write_bytes(malformed.encode("utf-8", errors="surrogateescape"))
    (run / "nan.plotly.json").write_text('{"data": [{"type": "bar", "y": [NaN, 1]}]}')  # NaN: not JSON to a browser
    page, warned = _page_and_warnings([run], tmp_path / "page")
    parser = _Scripts()
    parser.feed(page)
    specs = [json.loads(spec) for spec in parser.specs]  # each one parses as strict JSON, as JSON.parse does
    assert [s["data"][0]["y"] for s in specs] == [[1], [None, 1]]
    assert [w.split("/")[-1] for w in warned] == ["broken.plotly.json': not a valid plotly figure spec"]
    assert "could not be drawn" in page  # and one figure that plotly rejects does not stop the others in the browser


def test_every_value_placed_in_the_page_is_escaped_attributes_included(tmp_path):
    evil = "x'\"><img src=x onerror=alert(1)>"
    run = tmp_path / "run"
    run.mkdir()
    record = {
        "experiment": evil,
        "models": [{"name": evil}],
        "command": ["layerscope", evil],
        evil: evil,
        "nested": {evil: {evil: evil}},
        "rows": [{evil: evil}],
        "timings_s": {evil: 1.0},
        "findings": {f"a{evil}": evil, "b": evil},
    }
    (run / "run.json").write_text(json.dumps(record))
    (run / f"a{evil}.plotly.json").write_text(json.dumps({"data": [], "layout": {"title": {"text": evil}}}))
    (run / f"t{evil}.csv").write_text(f"c{evil}\n{evil}\n")
    (run / f"n{evil}.md").write_text(evil)
    page = layerscope.report([run], out=tmp_path / "page", title=evil).html()
    tags = _Tags()
    tags.feed(page)
    assert not [t for t, _ in tags.tags if t in ("img", "iframe", "object", "embed")]
    assert not [(t, a) for t, a in tags.tags if any(k.startswith("on") for k in a)]
    figure = next(a for t, a in tags.tags if t == "div" and a.get("class") == "figure")
    assert figure["data-figure"] == f"a{evil}" and figure["id"] == "fig-0-0"
    assert page.count(f'<p class="finding" data-figure="a{esc(evil)}">{esc(evil)}</p>') == 1


def esc(text: str) -> str:
    import html

    return html.escape(text, quote=True)


# ----- what the page says: load time, numbers for people, one sentence under each figure (issue 15) -----------


def _record_run(root, name, record, figures=("index",)):
    run = root / name
    run.mkdir(parents=True)
    (run / "run.json").write_text(json.dumps({"experiment": name, "models": [{"name": "tiny"}], **record}))
    for stem in figures:
        (run / f"{stem}.plotly.json").write_text(json.dumps({"data": [], "layout": {}}))
    return run


def test_numbers_are_formatted_for_people_not_printed_as_json(tmp_path):
    run = _record_run(
        tmp_path,
        "inspect",
        {
            "prompts": [
                {"prompt": "5+2=", "ids": [2, 24, 14], "target": "7", "position": 2},
                {"prompt": "3+4=", "ids": [2, 22, 14], "target": "7", "position": 2},
            ],
            "explained_variance_ratio": [0.5312, 0.0734],
            "echo_rate": 0.9444,
            "best_silhouette": {"m": {"layer": "9", "silhouette": 0.41666}, "n": None},
            "parameters": 268098176,
            "bytes": 536196352,
            "words": [f"w{i}" for i in range(30)],
            "score": 0.000012345,
            "deep": {"a": {"b": {"c": 1}}},
            "failures": {},
            "table_dtypes": {"x": {"a": "int64"}},
        },
    )
    section = layerscope.report([run], out=tmp_path / "page").sections[0]
    numbers = section.numbers
    assert numbers["explained variance ratio"] == "53%, 7.3%"
    assert numbers["echo rate"] == "94%"
    assert numbers["parameters"] == "268,098,176" and numbers["bytes"] == "511.4 MiB"
    assert numbers["words"] == ", ".join(f"w{i}" for i in range(12)) + ", ... (30 in all)"
    assert numbers["score"] == "1.23e-05"
    prompts = numbers["prompts"]
    assert prompts.columns == ["prompt", "ids", "target", "position"]
    assert prompts.rows == [["5+2=", "2, 24, 14", "7", "2"], ["3+4=", "2, 22, 14", "7", "2"]]
    best = numbers["best silhouette"]
    assert best.columns == ["", "layer", "silhouette"] and best.rows == [["m", "9", "0.417"], ["n", "-", "-"]]
    assert "deep" not in numbers and "failures" not in numbers and "table dtypes" not in numbers
    page = (tmp_path / "page" / "report.html").read_text()
    body = re.sub(r"<script.*?</script>", "", page[page.index("<main>") :], flags=re.S)
    assert '{"' not in body and "[2, 24" not in body and "&quot;" not in body  # no raw JSON in the page


def test_load_time_is_shown_when_a_model_was_loaded_and_never_as_zero(tmp_path):
    own = _record_run(tmp_path / "a", "tokens", {"timings_s": {"load": 10.234, "compute": 0.0035, "write": 1.5}})
    shared = _record_run(tmp_path / "a", "echo", {"timings_s": {"load": 0.0, "probe": 0.2}})
    page = layerscope.report([own, shared], out=tmp_path / "page").html()
    assert '<p class="meta">model loaded in 10.2 s · compute 4 ms · write 1.5 s</p>' in page
    assert '<p class="meta">probe 200 ms</p>' in page
    assert "load 0" not in page and "0.00 s" not in page
    assert "model loaded in" not in page[: page.index("<main>")]  # no tour: nothing shared to show in the header


def test_a_tour_shows_its_model_load_time_in_the_page_header(tmp_path):
    runs = [
        _record_run(tmp_path, "tokens", {"created": "2026-01-01T10:00:01+00:00", "timings_s": {"compute": 1.0}}),
        _record_run(tmp_path, "echo", {"created": "2026-01-01T10:00:02+00:00", "timings_s": {"load": 0.0}}),
    ]
    header = lambda page: page[page.index("<header>") : page.index("</header>")]  # noqa: E731
    explicit = layerscope.report(runs, out=tmp_path / "a", title="t")
    assert "model loaded in" not in header(explicit.html())  # the folder holds no tour record
    from layerscope.runner import execute

    result = execute(ReportConfig(run_dirs=tuple(map(str, runs)), model_load_s=10.24))
    assert "model loaded in 10.2 s; 2 runs" in header(result.html())
    tour_record = {"experiment": "tour", "created": "2026-01-01T10:00:03+00:00", "timings_s": {"load": 12.5}}
    (tmp_path / "run.json").write_text(json.dumps(tour_record))
    assert "model loaded in 12.5 s" in header(layerscope.report(runs, out=tmp_path / "c").html())
    (tmp_path / "run.json").write_text(json.dumps({**tour_record, "created": "2026-01-01T09:00:00+00:00"}))
    assert "model loaded in" not in header(layerscope.report(runs, out=tmp_path / "d").html())  # an older tour


def test_each_finding_is_shown_under_its_figure(tmp_path):
    run = _record_run(
        tmp_path,
        "inspect",
        {"findings": {"heatmap": "the RMS grows", "logit_lens": "the target <first>", "gone": "no figure"}},
        figures=("heatmap", "logit_lens"),
    )
    page = layerscope.report([run], out=tmp_path / "page").html()
    heat = page.index('data-figure="heatmap"></div>')
    lens = page.index('data-figure="logit_lens"></div>')
    assert heat < page.index('<p class="finding" data-figure="heatmap">the RMS grows</p>') < lens
    assert lens < page.index('<p class="finding" data-figure="logit_lens">the target &lt;first&gt;</p>')
    assert '<li class="finding">no figure</li>' in page


# ----- the findings each result writes (numbers made up here, so the sentence is known) -------------------------


def test_ablate_finding_names_the_largest_drop():
    import pandas as pd

    from layerscope.experiments.ablate import AblateConfig, AblateResult

    def result(rows):
        table = pd.DataFrame(rows, columns=["config", "removed_layers", "accuracy"])
        return AblateResult(config=AblateConfig(), accuracy=table, examples=pd.DataFrame(), groups=[], task_name="t")

    rows = [("baseline", "", 0.45), ("drop 0", "0", 0.09), ("drop 1", "1", 0.40), ("drop 2", "2", 0.5)]
    assert result(rows).findings() == {
        "accuracy": "removing block 0 drops accuracy from 0.45 to 0.09, the largest drop; 2 of 3 removals lower it"
    }
    rows = [("baseline", "", 0.45), ("drop 2-4", "2,3,4", 0.1), ("drop 4,7", "4,7", 0.1)]
    assert (
        result(rows)
        .findings()["accuracy"]
        .startswith("removing blocks 2-4 drops accuracy from 0.45 to 0.10, the largest drop, shared by 2 removals")
    )
    rows = [("baseline", "", 0.5), ("drop 0", "0", 0.5)]
    assert result(rows).findings() == {
        "accuracy": "no removal lowers accuracy below the baseline 0.50 (1 removals tried)"
    }
    assert result(rows[:1]).findings() == {}


def test_echo_finding_counts_the_words_that_echo():
    import pandas as pd

    from layerscope.experiments.echo import EchoConfig, EchoResult

    rows = [("m", "without", True, i < 17, 0.5) for i in range(18)] + [("m", "with", True, False, 0.1)] * 18
    table = pd.DataFrame(rows, columns=["model", "bos", "applicable", "echo", "p_echo"])
    result = EchoResult(config=EchoConfig(), table=table, completions=pd.DataFrame())
    assert result.findings() == {"echo": "without BOS 17 of 18 words echo (94%); with BOS 0 of 18"}


def test_tokens_layers_and_inspect_findings_read_their_numbers():
    from types import SimpleNamespace

    import numpy as np
    import pandas as pd

    from layerscope.experiments.inspect import InspectConfig, InspectResult, PromptTokens
    from layerscope.experiments.layers import LayersConfig, LayersResult
    from layerscope.experiments.tokens import TokensConfig, TokensResult

    words = pd.DataFrame({"set": ["digits"] * 4, "label": list("abcd"), "split": [False, True, False, True]})
    tokens = TokensResult(
        config=TokensConfig(),
        table=words,
        embeddings=np.zeros((4, 2)),
        basis=SimpleNamespace(explained_variance_ratio=np.array([0.531, 0.12, 0.08])),
    )
    assert tokens.findings() == {
        "index": "PC1 explains 53% of the variance, PC2 12%, PC3 8.0% (73% together); "
        "2 of 4 words are split into several tokens"
    }
    metrics = pd.DataFrame({"model": "m", "layer": ["embed", "0", "9", "norm"], "silhouette": [0.1, 0.2, 0.42, 0.3]})
    projection = pd.DataFrame({"set": ["digits", "number-words"]})
    layers = LayersResult(
        config=LayersConfig(),
        projection=projection,
        metrics=metrics,
        ratios=pd.DataFrame(),
        residuals={},
        titles={},
    )
    assert layers.findings() == {"index": "digits and number-words separate best at block 9 (silhouette 0.42)"}

    names = ["embed", "0", "1", "2", "norm"]
    residuals = np.zeros((4, 5, 8), np.float32)
    for layer in range(5):
        residuals[:, layer, 3] = 2.0 * (layer + 1)  # RMS = |value| / sqrt(8); dimension 3 is always the largest
    prompts = [PromptTokens(f"{i}+1=", [1, 2], 1, "=", str(i + 1), 5) for i in range(4)]
    first_top = {0: 2, 1: 2, 2: 1, 3: None}  # depth where each prompt's target becomes rank 1 (None: never)
    lens = pd.DataFrame(
        [
            {
                "prompt_index": p,
                "layer": name,
                "depth": depth,
                "target_rank": 1 if first_top[p] is not None and depth >= first_top[p] else 5,
            }
            for p in range(4)
            for depth, name in enumerate(names)
        ]
    )
    inspect = InspectResult(
        config=InspectConfig(prompts=tuple(t.prompt for t in prompts)),
        tokens=prompts,
        residuals=residuals,
        layer_names=names,
        similarity=pd.DataFrame(),
        lens=lens,
        phases=None,
        matrices={},
        comparison=None,
    )
    found = inspect.findings()
    assert set(found) == {"heatmap", "logit_lens"}  # no phases with phases=None
    assert found["heatmap"] == (
        f"the RMS grows from {2 / np.sqrt(8):.3g} at the embedding to {8 / np.sqrt(8):.3g} at block 2 "
        "(median over 4 prompts); dimension 3 has the largest |value| in 16 of 16 prompt-layer cells"
    )
    assert found["logit_lens"] == (
        "the target first becomes the top token at block 1 for 2 of 4 prompts; 3 of 4 reach it at some layer"
    )


def test_a_tour_page_has_its_load_time_in_the_header_and_a_sentence_under_every_figure(tiny_quick_tour):
    result, out = tiny_quick_tour  # the tour loaded the tiny llama from its directory
    assert not result.failed, result.steps
    load = json.loads((out / "run.json").read_text())["timings_s"]["load"]
    page = result.report.read_text()
    header = page[page.index("<header>") : page.index("</header>")]
    from layerscope.render.people import seconds_text

    # run.json keeps the seconds rounded to 4 decimals: the header shows a time within that rounding of it
    shown = {seconds_text(load + k * 0.00001) for k in range(-5, 6)}
    assert any(f"model loaded in {text}; 7 runs" in header for text in shown), (load, header)
    for step in result.steps.values():
        run = Path(step["run_dir"])
        stems = sorted(p.name[: -len(".plotly.json")] for p in run.glob("*.plotly.json"))
        findings = json.loads((run / "run.json").read_text())["findings"]
        assert sorted(findings) == stems, run.name
        for stem, sentence in findings.items():
            assert f'data-figure="{stem}">{esc(sentence)}</p>' in page
    assert "load 0" not in page and "0.00 s" not in page


def test_layout_finding_names_the_largest_parts_with_numbered_blocks_as_one(tmp_path):
    import numpy as np
    from safetensors.numpy import save_file

    tensors = {
        "model.layers.0.w": np.zeros((2, 3), np.float32),
        "model.layers.1.w": np.zeros((2, 3), np.float32),
        "model.embed.weight": np.zeros((5, 3), np.float32),
        "lm_head.weight": np.zeros((1, 2), np.float32),
    }
    save_file(tensors, str(tmp_path / "m.safetensors"))
    result = layerscope.layout(tmp_path / "m.safetensors")
    assert result.findings() == {
        "treemap": "29 parameters; the largest parts: model.embed 52%, model.layers (2 blocks) 41%, lm_head 6.9%"
    }
