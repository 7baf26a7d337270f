"""``layerscope.load_run``: every experiment's saved run comes back equal (config, tables, arrays), with working
figures and a notebook display that holds the figure and the key numbers; short reprs for large results."""

from __future__ import annotations

import dataclasses
import html
import json
import re
import shutil

import numpy as np
import pandas as pd
import pytest

import layerscope
from layerscope import LayerscopeError, ModelSpec
from layerscope.convert.quantize import QuantizeConfig, quantize_run
from layerscope.experiments.encode import EncodeConfig
from layerscope.runner import execute

WORDS = "red,nan,None,007,True,0"  # words pandas would read as missing, numbers or booleans


@pytest.fixture(scope="module")
def runs(tiny_models, tiny_model_dirs, tiny_embeddinggemma_dir, tiny_quick_tour, tmp_path_factory) -> dict:
    """``{name: (result as returned, its run directory)}``, one run of every experiment on tiny models (the tour is
    the session's quick tour of the tiny llama)."""
    root = tmp_path_factory.mktemp("runs")
    embedder_dir = str(tiny_embeddinggemma_dir)
    llama, qwen = tiny_models["llama"], tiny_models["qwen3"]
    made = {
        "tokens": lambda out: layerscope.tokens(["digits"], model=llama, tokens=WORDS, dims=2, out=out),
        "tokens-basis": lambda out: layerscope.tokens(
            ["digits", "number-words"], model=llama, basis_set="number-words", out=out
        ),
        "layers": lambda out: layerscope.layers(["digits"], model=[llama, qwen], tokens=WORDS, out=out),
        "layers-basis": lambda out: layerscope.layers(
            ["digits"], model=llama, basis=-1, layers="embed,0,norm", out=out
        ),
        "capture": lambda out: layerscope.residuals(
            ["red blue", "John"], model=llama, positions="all", layers="embed,-1", out=out
        ),
        "capture-words": lambda out: layerscope.residuals(sets={"colors": ["red", "blue"]}, model=llama, out=out),
        "inspect": lambda out: layerscope.inspect(["1+1=", "2+2=", "3+3=", "4+4="], model=llama, target="2", out=out),
        "inspect-compare": lambda out: layerscope.inspect("5+2=", model=llama, compare_model=llama, out=out),
        "ablate": lambda out: layerscope.ablate("arithmetic", model=llama, n=12, drop=["1", "0,2"], out=out),
        "patch": lambda out: layerscope.patch("5+2=", "5+3=", answer="7", wrong="8", part="all", model=llama, out=out),
        "echo": lambda out: layerscope.echo(models=[llama, qwen], tokens=WORDS, out=out),
        "encode": lambda out: execute(
            EncodeConfig(texts=("a cat", "a dog", ""), model=ModelSpec(embedder_dir), prompt_name="query"), out=out
        ),
        "similar": lambda out: layerscope.similar("a pet", ["a cat", "a dog", "a car"], embedder_dir, out=out),
        "stages": lambda out: layerscope.stages(["a cat", "a dog", "a car"], embedder_dir, dims=3, out=out),
        "layout": lambda out: layerscope.layout(llama.source, out=out),
        "report": lambda out: layerscope.report([root / "tokens", root / "inspect"], out=out, title="two runs"),
        "compare": lambda out: layerscope.compare(
            [llama, qwen], prompts=["1+1=", "2+2=", "3+3=", "4+4=", "The word is"], out=out
        ),
        "compare-words": lambda out: layerscope.compare([llama, qwen], tokens=WORDS, context="nobos", out=out),
        "sensitivity": lambda out: layerscope.sensitivity(
            llama, bits=2, task="arithmetic", n=6, shots=0, budget="10%", out=out
        ),
        "quantize": lambda out: quantize_run(QuantizeConfig(source=str(llama.source), to="mlx", bits=8), out),
        "sweep": lambda out: layerscope.sweep(
            "echo",
            [str(tiny_model_dirs["llama"]), str(tiny_model_dirs["qwen3"])],
            tokens=("red", "blue"),
            max_new_tokens=1,
            use_ray=False,
            out=out,
        ),
    }
    return {"tour": tiny_quick_tour} | {name: (make(root / name), root / name) for name, make in made.items()}


NAMES = [
    "tokens",
    "tokens-basis",
    "layers",
    "layers-basis",
    "capture",
    "capture-words",
    "inspect",
    "inspect-compare",
    "ablate",
    "patch",
    "echo",
    "encode",
    "similar",
    "stages",
    "layout",
    "tour",
    "report",
    "compare",
    "compare-words",
    "sensitivity",
    "quantize",
    "sweep",
]


def test_every_registry_entry_is_reopened():
    """The runs above hold one of every registry entry, and :func:`load_run` reopens each."""
    from layerscope.registry import ENTRIES, reopened

    assert {name.split("-")[0] for name in NAMES} == set(reopened()) == set(ENTRIES)


def test_a_reopened_report_holds_its_page_and_its_runs(runs):
    original, path = runs["report"]
    loaded = layerscope.load_run(path)
    assert (path / "report.html").read_text(encoding="utf-8") == loaded.html() == original.html()
    assert [(s.name, s.experiment, s.title) for s in loaded.sections] == [
        ("tokens", "tokens", "tokens: llama"),
        ("inspect", "inspect", "inspect: llama"),
    ]
    assert list(loaded.tables()["sections"]["run_dir"]) == [str(path.parent / "tokens"), str(path.parent / "inspect")]


def test_a_reopened_sweep_has_every_models_run(runs):
    original, path = runs["sweep"]
    loaded = layerscope.load_run(path)
    assert list(loaded.results) == list(original.results) and len(loaded.results) == 2
    for name, result in loaded.results.items():
        assert result.config == original.results[name].config
    assert loaded.figures()["sweep"]().to_json() == original.figures()["sweep"]().to_json()


def _check_equal(loaded, original) -> None:
    assert type(loaded) is type(original)
    assert loaded.config == original.config
    assert loaded.models == json.loads(json.dumps(original.models))
    tables, saved = original.tables(), loaded.tables()
    assert list(saved) == list(tables)
    for stem, frame in tables.items():
        pd.testing.assert_frame_equal(saved[stem], frame.reset_index(drop=True), check_exact=True)
    arrays, back = original.arrays(), loaded.arrays()
    assert list(back) == list(arrays)
    for stem, array in arrays.items():
        if isinstance(array, dict):
            assert list(back[stem]) == list(array)
            for key in array:
                np.testing.assert_array_equal(back[stem][key], array[key])
        else:
            assert isinstance(back[stem], np.memmap) and not back[stem].flags.writeable
            assert back[stem].dtype == np.asarray(array).dtype
            np.testing.assert_array_equal(back[stem], array)
    assert loaded.summary() == original.summary()
    assert loaded.record() == original.record()


@pytest.mark.parametrize("name", NAMES)
def test_a_saved_run_loads_back_equal(runs, name):
    original, run_dir = runs[name]
    loaded = layerscope.load_run(run_dir)
    _check_equal(loaded, original)
    for stem, make in original.figures().items():  # the figures work and are drawn from the same numbers
        assert loaded.figures()[stem]().to_json() == make().to_json(), stem
    assert _without_ids(loaded.texts()) == _without_ids(original.texts())


def _without_ids(texts: dict) -> dict:
    """Texts with the random ids plotly gives each figure's div left out."""
    return {
        name: re.sub(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", "ID", t)
        for name, t in texts.items()
    }


@pytest.mark.parametrize("name", NAMES)
def test_the_notebook_display_holds_the_figure_and_the_key_numbers(runs, name):
    original, run_dir = runs[name]
    loaded = layerscope.load_run(run_dir)
    page = loaded._repr_html_()
    assert html.escape(loaded.headline()) in page
    for line in loaded.summary()[:7]:
        assert html.escape(line) in page
    figure = loaded.main_figure()
    if loaded.figures() or name in ("echo", "stages"):
        assert figure is not None and 'class="plotly-graph-div"' in page
        title = figure.layout.title.text
        shown = page.replace("\\u003c", "<").replace("\\u003e", ">").replace("\\u0026", "&").replace("\\u002f", "/")
        assert title is None or json.dumps(title)[1:-1] in shown
    else:
        assert figure is None and "plotly" not in page
    table = loaded.main_table()
    if table is not None:
        assert "<table" in page and all(html.escape(str(c)) in page for c in table.columns)
    text = repr(loaded)
    assert text.splitlines()[0] == loaded.headline() and len(text.splitlines()) <= 10
    assert all(line.strip() in text for line in loaded.summary()[:7])


def test_main_figure_and_table_are_the_key_ones(runs):
    layers, _ = runs["layers"]
    assert layers.main_table() is layers.metrics
    capture, _ = runs["capture"]
    assert list(capture.main_table().columns) == ["model", "layer", "depth", "residual_norm"]
    echo, _ = runs["echo"]
    assert echo.main_figure().to_json() == echo.figure().to_json()
    tour_result, _ = runs["tour"]
    assert list(tour_result.main_table()["step"]) == list(tour_result.steps)
    inspect, _ = runs["inspect"]
    assert inspect.main_figure().to_json() == inspect.figure().to_json()


def test_text_that_looks_like_numbers_stays_text(runs):
    loaded = layerscope.load_run(runs["tokens"][1])
    assert {"nan", "None", "007", "True", "0"} <= set(loaded.table["label"])
    assert loaded.table["split"].dtype == bool and loaded.table["n_tokens"].dtype == np.int64
    assert all(isinstance(ids, str) for ids in loaded.table["token_ids"])
    layers = layerscope.load_run(runs["layers"][1])
    assert list(dict.fromkeys(layers.metrics["layer"]))[:3] == ["embed", "0", "1"]
    assert layers.titles["0"] == "block 0" and layers.residuals == {}
    encode = layerscope.load_run(runs["encode"][1])
    assert encode.inputs == ["a cat", "a dog", ""]


def test_loaded_results_keep_their_numbers(runs):
    tokens, run_dir = runs["tokens-basis"]
    loaded = layerscope.load_run(run_dir)
    np.testing.assert_allclose(loaded.explained_variance_ratio, tokens.explained_variance_ratio, rtol=1e-12)
    inspect = layerscope.load_run(runs["inspect"][1])
    original = runs["inspect"][0]
    assert original.phases is not None and inspect.phases == original.phases
    for key, matrix in original.matrices.items():
        np.testing.assert_allclose(inspect.matrices[key], matrix, rtol=1e-12, atol=1e-12)
    assert [t.token for t in inspect.tokens] == [t.token for t in original.tokens]
    assert inspect.phases_figure().to_json() == original.phases_figure().to_json()
    ablate = layerscope.load_run(runs["ablate"][1])
    assert ablate.groups == runs["ablate"][0].groups and ablate.task_name == runs["ablate"][0].task_name
    stages = layerscope.load_run(runs["stages"][1])
    assert stages.figure("0").to_json() == runs["stages"][0].figure("0").to_json()


def test_every_step_of_a_tour_loads(runs):
    result, out = runs["tour"]
    assert not result.failed, result.steps
    for step in result.config.steps(3):
        loaded = layerscope.load_run(out / step.name)
        config = step.config
        if hasattr(config, "resume_dir"):  # ablate keeps its parts in its run directory
            config = dataclasses.replace(config, resume_dir=str(out / step.name))
        assert loaded.config == config


def test_a_run_from_before_dtypes_were_recorded_keeps_layer_names_as_text(runs, tmp_path):
    old = tmp_path / "old"
    shutil.copytree(runs["layers"][1], old)
    record = json.loads((old / "run.json").read_text())
    del record["table_dtypes"]
    (old / "run.json").write_text(json.dumps(record))
    loaded = layerscope.load_run(old)
    assert loaded.metrics["layer"].tolist() == runs["layers"][0].metrics["layer"].tolist()
    assert loaded.figure() is not None


def test_a_large_result_has_a_short_repr(tiny_models):
    result = layerscope.layers(model=tiny_models["llama"])  # every category, every layer
    assert len(result.projection) > 100
    assert len(repr(result).splitlines()) <= 10
    prompts = [f"{a}+{a}=" for a in range(60)]  # as from a long prompt file
    inspect = layerscope.inspect(prompts, model=tiny_models["llama"])
    lines = repr(inspect).splitlines()
    assert len(lines) <= 12 and "more lines" in lines[-1] and len(inspect.summary()) > 60
    page = inspect._repr_html_()  # the heatmap of 60 prompts side by side draws
    assert page.count("<li>") <= 8 and 'class="plotly-graph-div"' in page


def test_bad_run_directories_are_one_line(tmp_path, runs):
    cases = {
        tmp_path / "missing": "is not a directory",
        tmp_path: "holds no run.json",
    }
    for path, message in cases.items():
        with pytest.raises(LayerscopeError, match=message) as caught:
            layerscope.load_run(path)
        assert "\n" not in str(caught.value)
    (tmp_path / "run.json").write_text(json.dumps({"experiment": "unknown", "config": {}}))
    with pytest.raises(LayerscopeError, match="'unknown', which cannot be loaded; loadable: ") as caught:
        layerscope.load_run(tmp_path)
    assert "\n" not in str(caught.value)
    (tmp_path / "run.json").write_text("{not json")
    with pytest.raises(LayerscopeError, match="cannot be read") as caught:
        layerscope.load_run(tmp_path)
    assert "\n" not in str(caught.value)


def test_layout_needs_its_checkpoint(runs, tmp_path):
    result, run_dir = runs["layout"]
    moved = tmp_path / "layout"
    shutil.copytree(run_dir, moved)
    record = json.loads((moved / "run.json").read_text())
    record["config"]["source"] = str(tmp_path / "gone.safetensors")
    (moved / "run.json").write_text(json.dumps(record))
    with pytest.raises(LayerscopeError, match="needs its checkpoint") as caught:
        layerscope.load_run(moved)
    assert "\n" not in str(caught.value)


#: token texts a CSV writer must keep inside one field: line breaks, quotes, separators, NUL, a lone surrogate
#: (no UTF-8 holds it), the replacement character, text pandas reads as missing, leading/trailing blanks
HOSTILE = ["a\rb", "\r", "x\ny", "\r\n", '"q"', '"', ",", "nul\x00x", "\x00", "\ud800", "x\udcffy", "\ufffd", "NA", " "]


def _hostile(frame: pd.DataFrame, dtypes: dict) -> pd.DataFrame:
    """``frame`` with every text cell replaced by a hostile token (missing cells stay missing)."""
    frame = frame.reset_index(drop=True).copy()
    for column in frame.columns:
        if dtypes.get(str(column)) in ("str", "object", "string", "str/na"):
            shift = sum(map(ord, str(column)))
            cells = [HOSTILE[(i + shift) % len(HOSTILE)] for i in range(len(frame))]
            frame[column] = pd.Series(
                [c if not pd.isna(v) else v for c, v in zip(cells, frame[column])], dtype=frame[column].dtype
            )
    return frame


@pytest.mark.parametrize("name", NAMES)
def test_every_table_round_trips_hostile_token_text(runs, name, tmp_path, monkeypatch):
    """Each CSV an experiment writes, with hostile text in every text column, written through RunDir, reads back to
    exactly the rows written: with plain pandas and through ``load_run``."""
    from layerscope.rundir import RunDir

    original, _ = runs[name]
    dtypes = original.table_dtypes()
    hostile = {stem: _hostile(frame, dtypes[stem]) for stem, frame in original.tables().items()}
    monkeypatch.setattr(original, "tables", lambda: hostile)
    out = RunDir(tmp_path / "run").write(original)
    read_back = {}
    result_class = type(original)

    def capture(config, tables, arrays, record, path):
        read_back.update(tables)
        return original

    monkeypatch.setattr(result_class, "from_files", capture)
    layerscope.load_run(out)
    assert sorted(read_back) == sorted(s for s in hostile if "/" not in s)
    for stem, frame in hostile.items():
        pd.testing.assert_frame_equal(read_back[stem], frame, check_exact=True)
        text = [c for c in frame.columns if dtypes[stem][str(c)] in ("str", "object", "string", "str/na")]
        plain = pd.read_csv(  # plain pandas (Python strings: pyarrow's, where installed, refuse lone surrogates)
            out / f"{stem}.csv", dtype=object, keep_default_na=False, encoding_errors="surrogatepass"
        )
        assert len(plain) == len(frame) and list(plain.columns) == [str(c) for c in frame.columns]
        for column in text:
            assert list(plain[str(column)]) == [("" if pd.isna(v) else v) for v in frame[column]], (stem, column)


def test_hostile_words_of_a_real_run_read_back(tiny_models, tmp_path):
    """A tokens run on words with line breaks, quotes and NUL: the saved table loads back equal."""
    words = ["a\rb", "x\ny", '"q"', "n\x00l", "r\r\ns", "\ufffd"]
    result = layerscope.tokens(model=tiny_models["llama"], tokens=words, dims=2, out=tmp_path / "run")
    loaded = layerscope.load_run(tmp_path / "run")
    pd.testing.assert_frame_equal(loaded.table, result.table.reset_index(drop=True), check_exact=True)
    assert set(words) <= set(loaded.table["label"])
