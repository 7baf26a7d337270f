"""Interruptions: ``ablate`` and a disk-streamed ``layers`` capture killed with SIGKILL part-way, then rerun.

The rerun completes with the results of an uninterrupted run; after the kill no file under its final name
is half-written (every write goes to a hidden ``.NAME.*.part`` temp file renamed when complete).
``ablate`` resumes from its ``parts/`` files; ``layers`` keeps its capture in an unlinked memory-mapped
file, so a killed capture leaves nothing behind and the rerun starts over.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from signal_when import signal_when

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="SIGKILL and /proc are Linux")

SRC = Path(__file__).resolve().parents[2] / "src"


def _start(args: list[str]) -> subprocess.Popen:
    # One thread: the runs are tiny, and several threads per process on a shared machine only spin.
    env = {**os.environ, "PYTHONPATH": str(SRC), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "layerscope", "--quiet", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _finish(proc: subprocess.Popen) -> None:
    """Wait for a run started by :func:`_start`; it must succeed."""
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err


def _run(args: list[str]) -> None:
    _finish(_start(args))


def _kill_when(proc: subprocess.Popen, ready, timeout: float = 240) -> None:
    """SIGKILL ``proc`` as soon as ``ready()`` holds (polled every 10 ms); fails if it ends first."""
    signal_when(proc, ready, signal.SIGKILL, what="killed", timeout=timeout)
    assert proc.returncode == -signal.SIGKILL


def _final_files(out: Path) -> list[Path]:
    return [p for p in out.rglob("*") if p.is_file() and not p.name.startswith(".")]


def _check_whole(path: Path) -> None:
    """A final-named file must be complete: parse it by its kind."""
    if path.suffix in (".csv",):
        pd.read_csv(path)
    elif path.suffix == ".json":
        json.loads(path.read_text())
    elif path.suffix == ".jsonl":
        header, *lines = path.read_text().splitlines()
        columns = json.loads(header)
        assert lines and all(len(json.loads(line)) == len(columns) for line in lines)
        assert path.read_text().endswith("\n")
    elif path.suffix == ".html":
        assert path.read_text().rstrip().endswith("</html>")
    elif path.suffix == ".png":
        from PIL import Image

        with Image.open(path) as image:
            image.load()
    elif path.suffix == ".npy":
        import numpy as np

        np.load(path)


@pytest.mark.slow  # starts and signals processes that load a model
def test_killed_ablate_resumes_to_the_same_results(tiny_model_dirs, tmp_path):
    args = ["ablate", "--model", str(tiny_model_dirs["llama"]), "--n", "24", "--batch-size", "4"]
    whole = _start([*args, "--out", str(tmp_path / "whole")])  # the uninterrupted run, beside the killed one

    out = tmp_path / "killed"
    proc = _start([*args, "--out", str(out)])
    _kill_when(proc, lambda: (out / "parts" / "baseline.jsonl").is_file())
    _finish(whole)
    assert not (out / "accuracy.csv").exists()  # killed part-way, not after the end
    for path in _final_files(out):
        _check_whole(path)
    done = {p.name: p.stat().st_mtime_ns for p in (out / "parts").glob("*.jsonl")}
    assert "baseline.jsonl" in done and len(done) < 4  # baseline + 3 layers: some left to do

    _run([*args, "--out", str(out)])
    for name, mtime in done.items():  # finished parts were reused, not recomputed
        assert (out / "parts" / name).stat().st_mtime_ns == mtime
    for name in ("accuracy.csv", "examples.csv"):
        assert (out / name).read_bytes() == (tmp_path / "whole" / name).read_bytes()
    assert sorted(p.name for p in (out / "parts").iterdir() if not p.name.startswith(".")) == sorted(
        p.name for p in (tmp_path / "whole" / "parts").iterdir()
    )
    for path in _final_files(out):
        _check_whole(path)


def _maps_capture_file(pid: int) -> bool:
    """True while the process has its memory-mapped capture file open (the capture is under way)."""
    try:
        return "residuals." in Path(f"/proc/{pid}/maps").read_text()
    except OSError:
        return False


@pytest.fixture(scope="module")
def layers_run(tiny_model_dirs, tmp_path_factory):
    """The arguments of a capture too large for its 1 KB memory budget, its uninterrupted output's directory and
    the process writing it (started here, it runs beside the first killed run; :func:`_finish` it before reading)."""
    root = tmp_path_factory.mktemp("layers-whole")
    words = root / "words.txt"
    words.write_text("\n".join(f"w{i}" for i in range(800)) + "\n")
    args = [
        "layers",
        "--model",
        str(tiny_model_dirs["llama"]),
        "--set",
        str(words),
        "--memory-budget",
        "1KB",
        "--batch-size",
        "4",
    ]
    whole = _start([*args, "--out", str(root / "whole")])
    yield args, root / "whole", whole
    if whole.poll() is None:
        whole.kill()
        whole.communicate()


@pytest.mark.slow  # starts and signals processes that load a model
@pytest.mark.parametrize("moment", ["capture", "writing"])
def test_killed_layers_capture_reruns_to_the_same_results(layers_run, tmp_path, moment):
    args, whole, writing = layers_run
    out = tmp_path / "killed"
    proc = _start([*args, "--out", str(out)])
    if moment == "capture":  # mid-capture: the residuals stream to a memory-mapped file
        _kill_when(proc, lambda: _maps_capture_file(proc.pid))
    else:  # mid-output: as soon as the first result file is in place
        _kill_when(proc, lambda: out.is_dir() and any(_final_files(out)))
    assert not (out / "run.json").exists()  # run.json is written last
    for path in _final_files(out):
        _check_whole(path)

    _run([*args, "--out", str(out)])
    if writing.returncode is None:  # the uninterrupted run, started by the fixture
        _finish(writing)
    assert writing.returncode == 0
    assert sorted(str(p.relative_to(whole)) for p in _final_files(whole)) == sorted(
        str(p.relative_to(out)) for p in _final_files(out)
    )
    for name in ("projection.csv", "metrics.csv"):
        assert (out / name).read_bytes() == (whole / name).read_bytes()
    for path in _final_files(out):
        _check_whole(path)


# ----- one writer per run directory ----------------------------------------------------------------------------
_HOLD = """
import sys, time
from layerscope.rundir import RunDir
RunDir(sys.argv[1]).claim("tokens")
print("locked", flush=True)
time.sleep(600)
"""


@pytest.mark.slow  # starts and signals processes that load a model
def test_a_second_run_on_a_locked_out_is_refused_until_the_first_dies(tiny_model_dirs, tmp_path):
    out = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    holder = subprocess.Popen([sys.executable, "-c", _HOLD, str(out)], env=env, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        args = ["tokens", "--model", str(tiny_model_dirs["llama"]), "--tokens", "a,b,c", "--out", str(out)]
        began = time.monotonic()
        second = _start(args)
        _, err = second.communicate(timeout=120)
        assert second.returncode == 2, err
        assert err.count("\n") == 1 and "in use by another run" in err and f"process {holder.pid}" in err, err
        assert time.monotonic() - began < 30  # refused before any model is loaded
        assert not (out / "run.json").exists()
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=60)
    _run(args)  # the lock died with its process: the next run takes the directory over
    assert json.loads((out / "run.json").read_text())["experiment"] == "tokens"
    assert not (out / ".layerscope-lock").exists()


@pytest.mark.slow  # starts and signals processes that load a model
def test_two_runs_started_together_leave_one_consistent_run(tiny_model_dirs, tmp_path):
    """Two different experiments on one --out at once: at most one succeeds, and run.json matches its tables."""
    out = tmp_path / "run"
    model = str(tiny_model_dirs["llama"])
    procs = [
        _start(["tokens", "--model", model, "--tokens", "a,b,c", "--out", str(out)]),
        _start(["layers", "--model", model, "--tokens", "a,b,c", "--out", str(out)]),
    ]
    results = [(p.wait(timeout=300), p.communicate()[1]) for p in procs]
    codes = sorted(code for code, _ in results)
    assert codes in ([0, 2], [2, 2]), results
    for code, err in results:
        if code == 2:
            assert err.count("\n") == 1 and ("in use by another run" in err or "holds a" in err), err
    if 0 in codes:
        record = json.loads((out / "run.json").read_text())
        written = sorted(str(p.relative_to(out)) for p in _final_files(out))
        assert sorted(record["files"]) == [name for name in written if name != "run.json"]


# ----- Ctrl-C ------------------------------------------------------------------------------------------------------
def _interrupt_when(proc: subprocess.Popen, ready, timeout: float = 240) -> str:
    _, err = signal_when(proc, ready, signal.SIGINT, what="interrupted", timeout=timeout, end_timeout=120)
    assert proc.returncode == 130, err
    lines = [line for line in err.splitlines() if not line.startswith("warning: ")]  # a run's own warnings
    assert len(lines) == 1 and lines[0].startswith("layerscope: interrupted"), err
    return err


def _temporaries(out: Path) -> list[Path]:
    return [p for p in out.rglob("*.part")]


@pytest.mark.slow  # starts and signals processes that load a model
def test_ctrl_c_in_a_tour_exits_130_with_one_line_and_the_rerun_finishes_clean(tiny_model_dirs, tmp_path):
    out = tmp_path / "tour"
    args = ["tour", "--model", str(tiny_model_dirs["llama"]), "--quick", "--out", str(out)]
    proc = _start(args)
    _interrupt_when(proc, lambda: (out / "layers").is_dir())  # mid-tour: a later step under way
    assert not (out / "run.json").exists() and not (out / "report.html").exists()
    for path in _final_files(out):
        _check_whole(path)
    (out / "tokens" / ".projection.csv.x1.part").write_text("half")  # as a SIGKILL mid-write leaves
    (out / ".report.html.x2.part").write_text("half")
    _run(args)
    assert (out / "run.json").exists() and (out / "report.html").exists()
    assert _temporaries(out) == []


@pytest.mark.slow  # starts and signals processes that load a model
def test_ctrl_c_mid_ablate_exits_130_and_resumes(tiny_model_dirs, tmp_path):
    args = ["ablate", "--model", str(tiny_model_dirs["llama"]), "--n", "24", "--batch-size", "4"]
    out = tmp_path / "run"
    proc = _start([*args, "--out", str(out)])
    _interrupt_when(proc, lambda: (out / "parts" / "baseline.jsonl").is_file())
    assert not (out / "run.json").exists() and (out / "parts" / "baseline.jsonl").is_file()
    _run([*args, "--out", str(out)])
    assert json.loads((out / "run.json").read_text())["experiment"] == "ablate"
    assert _temporaries(out) == []


# ----- writability before the model -----------------------------------------------------------------------------
def _refused_before_loading(args: list[str], expected: str) -> None:
    proc = _start(args)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 2, err
    assert err.count("\n") == 1 and expected in err, err


@pytest.mark.parametrize("where", ["proc", "too-long", "file-in-the-way", "read-only"])
def test_an_out_that_cannot_be_written_is_refused_before_the_model_loads(tmp_path, where):
    if where == "read-only" and os.geteuid() == 0:
        pytest.skip("root writes into read-only directories")
    out = {
        "proc": "/proc/layerscope-run",
        "too-long": str(tmp_path / ("x" * 300)),
        "file-in-the-way": str(tmp_path / "file" / "run"),
        "read-only": str(tmp_path / "ro" / "run"),
    }[where]
    (tmp_path / "file").write_text("")
    (tmp_path / "ro").mkdir()
    (tmp_path / "ro").chmod(0o555)
    # a model that would take long to load, or fail, if it were loaded: the default one is never reached
    args = ["tokens", "--model", str(tmp_path / "no-such-model"), "--tokens", "a,b", "--out", out]
    _refused_before_loading(args, "--out" if where != "file-in-the-way" else "is a file")
