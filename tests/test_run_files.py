"""Hostile run directories: ``load_run`` and the report read them through one bounded reader (``run_files``) and
end in a result or one ``LayerscopeError`` line: no hang on a FIFO, no memory blow-up on sizes a file declares
(checked under the load path's 6 GB address-space limit), no other exception on crafted records, tables or
arrays, ``table_dtypes`` applied only where every value converts exactly, and nothing embedded in a page that
comes from outside the run directory or reaches the network."""

from __future__ import annotations

import io
import json
import os
import resource
import shutil
import signal
import struct
import subprocess
import sys
import zipfile
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import layerscope
from layerscope import LayerscopeError
from layerscope.cli import main
from layerscope.run_files import MAX_INT_DIGITS, MAX_JSON_DEPTH, ReadBudget, RunFiles, parse_json

SRC = str(Path(__file__).resolve().parents[1] / "src")
ADDRESS_SPACE = 6_000_000 * 1024  # the load path's limit (tests/models/test_load_safety.py): ulimit -v 6000000
TIME_LIMIT_S = 20  # far above an honest read (milliseconds): only a hang reaches it


class Hang(Exception):
    """A reader ran past ``TIME_LIMIT_S`` (e.g. blocked opening a FIFO)."""


@contextmanager
def no_hang():
    def alarm(signum, frame):
        raise Hang(f"no answer within {TIME_LIMIT_S} s")

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, TIME_LIMIT_S)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _one_line_refusal(call, match: str | None = None) -> str:
    with no_hang(), pytest.raises(LayerscopeError) as caught:
        call()
    message = str(caught.value)
    assert message and "\n" not in message, message
    if match is not None:
        assert match in message, message
    return message


@pytest.fixture(scope="module")
def bases(tiny_models, tiny_embeddinggemma_dir, tmp_path_factory) -> dict[str, Path]:
    """Real run directories: a tokens run, an inspect run (with phases.json) and a stages run (with an .npz) of the
    session's tiny models."""
    root = tmp_path_factory.mktemp("bases")
    llama = tiny_models["llama"]
    layerscope.tokens(["digits"], model=llama, tokens="red,nan,007", dims=2, out=root / "tokens")
    layerscope.inspect(["1+1=", "2+2=", "3+3=", "4+4="], model=llama, target="2", out=root / "inspect")
    layerscope.stages(["a cat", "a dog", "a car"], str(tiny_embeddinggemma_dir), dims=3, out=root / "stages")
    (root / "outside").mkdir()
    (root / "outside" / "secret.md").write_text("SECRET-OUTSIDE")
    return {"tokens": root / "tokens", "inspect": root / "inspect", "stages": root / "stages", "root": root}


def _copy(bases, kind: str, tmp_path: Path) -> Path:
    run = tmp_path / kind
    shutil.copytree(bases[kind], run)
    return run


def _edit_record(run: Path, **changes) -> None:
    record = json.loads((run / "run.json").read_text())
    record.update(changes)
    (run / "run.json").write_text(json.dumps(record))


# ----- (3) FIFOs -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "name"),
    [("tokens", "run.json"), ("tokens", "projection.csv"), ("tokens", "embeddings.npy"), ("inspect", "phases.json")],
)
def test_a_fifo_named_like_a_run_file_never_blocks_load_run(bases, tmp_path, kind, name):
    run = _copy(bases, kind, tmp_path)
    (run / name).unlink()
    os.mkfifo(run / name)
    if name == "phases.json":  # optional: not read, the phases are found again from the residuals
        with no_hang():
            loaded = layerscope.load_run(run)
        assert loaded.phases is not None and loaded.phases.bounds[0][0] == 0
    else:
        _one_line_refusal(lambda: layerscope.load_run(run), "not a regular file")


# ----- (4) memory ------------------------------------------------------------------------------------------------


def _limited(code: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """``python -c code args...`` under the load path's address-space limit."""

    def limit():
        resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE, ADDRESS_SPACE))

    env = {**os.environ, "PYTHONPATH": SRC, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        preexec_fn=limit,
    )


_LOAD = """
import sys, layerscope
try:
    layerscope.load_run(sys.argv[1])
except layerscope.LayerscopeError as exc:
    print(exc, file=sys.stderr)
    sys.exit(2)
"""


def _npy(shape: tuple, descr: str, payload: bytes) -> bytes:
    header = repr({"descr": descr, "fortran_order": False, "shape": shape}).encode()
    header += b" " * (63 - (len(header) + 10) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header + payload


def test_an_npz_member_that_declares_gigabytes_is_refused_under_the_memory_limit(bases, tmp_path):
    run = _copy(bases, "stages", tmp_path)
    with np.load(run / "stages.npz") as saved:
        names = list(saved)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name in names:  # every stage declares 2e9 float32 (7.45 GiB); the file holds 1 MiB of zeros each
            archive.writestr(f"{name}.npy", _npy((2_000_000_000,), "<f4", bytes(1 << 20)))
    (run / "stages.npz").write_bytes(buffer.getvalue())
    done = _limited(_LOAD, str(run))
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1, done.stderr[-2000:]
    assert "declares shape (2000000000,) of float32 (7.5 GiB)" in lines[0]


def test_a_report_over_many_large_files_stays_within_the_memory_limit(bases, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "run.json").write_text(json.dumps({"experiment": "tokens", "models": [{"name": "tiny"}]}))
    for i in range(14):  # each under the old 512 MiB cap, 5.5 GiB in all (sparse: no disk used)
        with open(run / f"figure{i:02d}.png", "wb") as handle:
            handle.truncate(400 << 20)
    env = {**os.environ, "PYTHONPATH": SRC, "HF_HUB_OFFLINE": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "layerscope", "report", str(run), "--out", str(tmp_path / "page")],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE, ADDRESS_SPACE)),
    )
    assert done.returncode == 0, done.stderr[-2000:]
    skipped = [line for line in done.stderr.splitlines() if "report: skipped" in line]
    assert len(skipped) == 14 and all(line.endswith("400.0 MiB, over the 64.0 MiB cap") for line in skipped)
    assert (tmp_path / "page" / "report.html").stat().st_size < 20 << 20


def test_the_report_reads_within_one_budget_for_the_whole_page(bases, tmp_path, monkeypatch):
    from layerscope.experiments import report

    monkeypatch.setattr(report, "REPORT_BUDGET_BYTES", 10_000)
    runs = []
    for r in range(2):
        run = tmp_path / f"run{r}"
        run.mkdir()
        (run / "run.json").write_text(json.dumps({"experiment": "tokens"}))
        for i in range(3):
            (run / f"note{i}.md").write_text(f"run {r} note {i} " + "x" * 3000)
        runs.append(run)
    with pytest.warns(UserWarning) as caught:
        page = layerscope.report(runs, out=tmp_path / "page").html()
    over = [str(w.message) for w in caught if "read budget" in str(w.message)]
    assert "run 0 note 2" in page and "run 1 note 0" not in page  # 3 notes of ~3 KB fit in 10 KB, the 4th does not
    assert len(over) == 3 and all("would pass the 9.8 KiB read budget" in m for m in over)


def test_load_run_reads_within_its_budget_and_says_how_to_read_more(bases, tmp_path):
    _one_line_refusal(
        lambda: layerscope.load_run(bases["tokens"], max_read_bytes=1000), "load_run(..., max_read_bytes=N)"
    )


# ----- (6) crafted directories ---------------------------------------------------------------------------------


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:-7])


def _lying_shape(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(_npy((10**12, 64), "<f4", data[128:]))


def _objects(path: Path) -> None:
    path.write_bytes(_npy((3,), "|O", b"\x80\x04N."))


def _deep(run: Path) -> None:
    (run / "run.json").write_text("[" * 100_000 + "]" * 100_000)


def _link_out(bases):
    def edit(run: Path) -> None:
        (run / "projection.csv").unlink()
        (run / "projection.csv").symlink_to(bases["root"] / "outside" / "secret.md")

    return edit


def _link_loop(run: Path) -> None:
    (run / "embeddings.npy").unlink()
    (run / "embeddings.npy").symlink_to("embeddings.npy")


def _folder(run: Path) -> None:
    (run / "projection.csv").unlink()
    (run / "projection.csv").mkdir()


def _not_listed(run: Path) -> None:
    record = json.loads((run / "run.json").read_text())
    _edit_record(run, files=[f for f in record["files"] if f != "projection.csv"])


CRAFTED = {
    "experiment is a list": lambda run: _edit_record(run, experiment=["tokens"]),
    "a model record with unknown fields": lambda run: _edit_record(run, config={"model": {"bogus": 1}}),
    "files is a number": lambda run: _edit_record(run, files=5),
    "table_dtypes is a list": lambda run: _edit_record(run, table_dtypes=["x"]),
    "a table's dtypes are a list": lambda run: _edit_record(run, table_dtypes={"projection": ["str"]}),
    "projection.csv missing": lambda run: (run / "projection.csv").unlink(),
    "projection.csv not listed": _not_listed,
    "projection.csv a folder": _folder,
    "projection.csv not CSV": lambda run: (run / "projection.csv").write_bytes(b'"unterminated\n'),
    "embeddings.npy truncated": lambda run: _truncate(run / "embeddings.npy"),
    "embeddings.npy declares 238 TiB": lambda run: _lying_shape(run / "embeddings.npy"),
    "embeddings.npy holds a pickle": lambda run: _objects(run / "embeddings.npy"),
    "embeddings.npy a link loop": _link_loop,
    "run.json nested 100,000 deep": _deep,
}


@pytest.mark.parametrize("case", list(CRAFTED) + ["projection.csv a link out of the directory"])
def test_a_crafted_run_directory_is_refused_in_one_line(bases, tmp_path, case):
    run = _copy(bases, "tokens", tmp_path)
    (CRAFTED.get(case) or _link_out(bases))(run)
    _one_line_refusal(lambda: layerscope.load_run(run))


def _set_cell(run: Path, column: str, value: str, dtype: str) -> None:
    frame = pd.read_csv(run / "projection.csv", dtype=str, keep_default_na=False)
    frame.loc[0, column] = value
    frame.to_csv(run / "projection.csv", index=False, quoting=1, lineterminator="\n")
    record = json.loads((run / "run.json").read_text())
    record["table_dtypes"]["projection"][column] = dtype
    _edit_record(run, table_dtypes=record["table_dtypes"])


@pytest.mark.parametrize(
    ("column", "value", "dtype", "message"),
    [
        ("label", "0", "bool", "'0' is not a bool (run.json's table_dtypes); valid: 'True', 'False'"),
        ("n_tokens", "399", "int8", "'399' is not a int8 (run.json's table_dtypes); whole numbers from -128 to 127"),
        ("n_tokens", "1.5", "int64", "'1.5' is not a int64"),
        ("n_tokens", "", "int64", "an empty cell in a column of whole numbers"),
        ("pc1", "1e300", "float16", "'1e300' is not a float16"),
        ("label", "red", "float64", "'red' is not a float64 (run.json's table_dtypes); not a number"),
        ("label", "red", "category", "names 'category', which a table is not read as"),
    ],
)
def test_table_dtypes_apply_only_when_every_value_converts_exactly(bases, tmp_path, column, value, dtype, message):
    run = _copy(bases, "tokens", tmp_path)
    _set_cell(run, column, value, dtype)
    _one_line_refusal(lambda: layerscope.load_run(run), message)


def test_a_dtype_every_value_fits_is_applied(bases, tmp_path):
    run = _copy(bases, "tokens", tmp_path)
    _set_cell(run, "n_tokens", "127", "int8")
    loaded = layerscope.load_run(run)
    assert loaded.table["n_tokens"].dtype == np.int8 and loaded.table["n_tokens"][0] == 127


# ----- (7) integers too long ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("digits", [4301, 400, MAX_INT_DIGITS + 1])
def test_an_integer_too_long_in_run_json_is_one_line_exit_2(bases, tmp_path, digits, capsys):
    run = _copy(bases, "tokens", tmp_path)
    text = (run / "run.json").read_text()
    (run / "run.json").write_text(text[:-1].rstrip().rstrip("}") + f', "weight_bytes": {"9" * digits}}}')
    _one_line_refusal(lambda: layerscope.load_run(run), f"holds an integer of {digits} digits; at most 40")
    with no_hang():
        code = main(["report", str(run), "--out", str(tmp_path / "page")])
    lines = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and f"an integer of {digits} digits" in lines[0], lines


def test_an_integer_too_long_in_a_figure_spec_skips_that_figure(bases, tmp_path):
    run = _copy(bases, "tokens", tmp_path)
    (run / "big.plotly.json").write_text('{"data": [{"type": "bar", "y": [' + "9" * 5000 + "]}]}")
    with pytest.warns(UserWarning, match="big.plotly.json': not a valid plotly figure spec"), no_hang():
        page = layerscope.report([run], out=tmp_path / "page").html()
    assert page.count('class="figure"') == 1  # index.plotly.json still shown


# ----- (2) leaks from the report -----------------------------------------------------------------------------------


def test_the_report_skips_a_hard_linked_file(bases, tmp_path):
    run = _copy(bases, "tokens", tmp_path)
    os.link(bases["root"] / "outside" / "secret.md", run / "notes.md")
    with pytest.warns(UserWarning, match="notes.md': a file with 2 hard links"):
        page = layerscope.report([run], out=tmp_path / "page").html()
    assert "SECRET-OUTSIDE" not in page


def test_the_report_embeds_nothing_that_reaches_the_network(bases, tmp_path):
    run = _copy(bases, "tokens", tmp_path)
    pixel = "data:image/png;base64,iVBORw0KGgo="
    spec = {
        "data": [
            {"type": "bar", "y": [1], "text": ['<span style="fill:url(http://evil.example/a.svg#x)">t</span>']},
            {"type": "image", "source": "https://evil.example/i.png"},
            {"type": "scattergeo", "lon": [1], "lat": [2]},
            {"type": "choroplethmapbox", "geojson": "https://evil.example/g.json"},
        ],
        "layout": {
            "images": [{"source": "http://evil.example/logo.png"}, {"source": pixel}],
            "mapbox": {"style": "https://evil.example/style.json"},
            "template": {"layout": {"images": [{"source": "//evil.example/t.png"}]}},
        },
        "frames": [{"layout": {"images": [{"source": "http://evil.example/f.png"}]}}],
    }
    (run / "attack.plotly.json").write_text(json.dumps(spec))
    with pytest.warns(UserWarning, match="left out of .*attack.plotly.json.*would reach the network"):
        page = layerscope.report([run], out=tmp_path / "page").html()
    assert "evil.example" not in page
    assert pixel in page, "a data: URI is the page's own bytes"
    assert '"text":["\\u003cspan>t\\u003c/span>"]' in page  # the style that fetched is gone


# ----- the reader itself -----------------------------------------------------------------------------------------------


def test_parse_json_bounds_depth_and_integers():
    assert parse_json(b'{"a": [1, -12345678901234567890]}', "x") == {"a": [1, -12345678901234567890]}
    deep = b"[" * (MAX_JSON_DEPTH + 1) + b"]" * (MAX_JSON_DEPTH + 1)
    for data, message in [
        (deep, "nested too deeply"),
        (b"[" + b"1" * (MAX_INT_DIGITS + 1) + b"]", "an integer of 41 digits"),
        (b"\xff", "not valid JSON"),
        (b"{", "not valid JSON"),
    ]:
        with pytest.raises(LayerscopeError, match=message):
            parse_json(data, "x")
    assert parse_json(b"[NaN]", "x", constants=lambda _: None) == [None]


def test_arrays_map_only_when_the_header_fills_the_file(tmp_path):
    np.save(tmp_path / "a.npy", np.arange(6, dtype=np.float32).reshape(2, 3))
    np.save(tmp_path / "f.npy", np.asfortranarray(np.arange(6).reshape(2, 3)))
    np.save(tmp_path / "empty.npy", np.zeros((0, 4)))
    np.savez(tmp_path / "z.npz", a=np.arange(3), b=np.ones((2, 2), np.float16))
    files = RunFiles(tmp_path, budget=ReadBudget(1 << 20))
    a = files.array("a.npy")
    assert isinstance(a, np.memmap) and not a.flags.writeable and a.tolist() == [[0, 1, 2], [3, 4, 5]]
    assert files.array("f.npy").tolist() == [[0, 1, 2], [3, 4, 5]]
    assert files.array("empty.npy").shape == (0, 4)
    z = files.array("z.npz")
    assert list(z) == ["a", "b"] and z["a"].tolist() == [0, 1, 2] and z["b"].dtype == np.float16


def test_a_home_directory_of_an_unknown_user_is_one_line(tmp_path, capsys):
    _one_line_refusal(lambda: layerscope.load_run("~no-such-user-3f9/run"), "is not a usable path")
    assert main(["report", "~no-such-user-3f9/run", "--out", str(tmp_path / "page")]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "names the home directory of an unknown user" in lines[0], lines


def test_an_inspect_run_whose_matrices_would_not_fit_is_refused(bases, tmp_path):
    run = _copy(bases, "inspect", tmp_path)
    record = json.loads((run / "run.json").read_text())
    layers = [str(i) for i in range(20_000)]  # 20,000 x 20,000 float64: 3 GiB, from a 240 KB residuals file
    np.save(run / "residuals.npy", np.ones((len(record["prompts"]), len(layers), 1), np.float32))
    _edit_record(run, layers=layers)
    _one_line_refusal(lambda: layerscope.load_run(run), "would need more than 1 GiB to compute again")
