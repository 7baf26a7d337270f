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


def _run(args: list[str]) -> None:
    proc = _start(args)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err


def _kill_when(proc: subprocess.Popen, ready, timeout: float = 240) -> None:
    """SIGKILL ``proc`` as soon as ``ready()`` holds (polled every 10 ms); fails if it ends first."""
    deadline = time.monotonic() + timeout
    while not ready():
        assert proc.poll() is None, f"the run ended before it could be killed: {proc.communicate()[1]}"
        assert time.monotonic() < deadline, "the run never reached the point to kill it at"
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)
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


def test_killed_ablate_resumes_to_the_same_results(tiny_model_dirs, tmp_path):
    args = ["ablate", "--model", str(tiny_model_dirs["llama"]), "--n", "24", "--batch-size", "4"]
    _run([*args, "--out", str(tmp_path / "whole")])

    out = tmp_path / "killed"
    proc = _start([*args, "--out", str(out)])
    _kill_when(proc, lambda: (out / "parts" / "baseline.jsonl").is_file())
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
    """The arguments of a capture too large for its 1 KB memory budget, and its uninterrupted output."""
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
    _run([*args, "--out", str(root / "whole")])
    return args, root / "whole"


@pytest.mark.parametrize("moment", ["capture", "writing"])
def test_killed_layers_capture_reruns_to_the_same_results(layers_run, tmp_path, moment):
    args, whole = layers_run
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
    assert sorted(str(p.relative_to(whole)) for p in _final_files(whole)) == sorted(
        str(p.relative_to(out)) for p in _final_files(out)
    )
    for name in ("projection.csv", "metrics.csv"):
        assert (out / name).read_bytes() == (whole / name).read_bytes()
    for path in _final_files(out):
        _check_whole(path)
