"""Library log lines (accelerate, transformers, ...) are held while a command runs: one error line stands alone."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from layerscope.cli.library_logs import held_library_logs


def test_records_are_held_then_handlers_restored(capsys):
    own = logging.getLogger("somelib")
    stream = logging.StreamHandler()  # like transformers' own handler on its library logger
    own.addHandler(stream)
    try:
        with held_library_logs(replay=False) as held:
            logging.getLogger("accelerate.big_modeling").warning("offloaded to the disk")  # ends in lastResort
            own.warning("library chatter")
        assert [r.getMessage() for r in held.records] == ["offloaded to the disk", "library chatter"]
        assert own.handlers == [stream] and own.propagate and logging.lastResort is not held
        assert capsys.readouterr().err == ""
        with held_library_logs(replay=True):
            own.error("shown with --debug")
        assert capsys.readouterr().err == "somelib: ERROR: shown with --debug\n"
    finally:
        own.removeHandler(stream)


@pytest.mark.parametrize("debug", [False, True])
def test_an_offloaded_model_that_fails_after_loading_prints_one_line(debug, tiny_model_dirs, tmp_path):
    """accelerate logs "Some parameters are on the meta device" while loading an offloaded model; then the
    position is refused. Without --debug stderr is that one error line; with --debug the held line is shown
    before the traceback. (A subprocess: pytest's own log capture would hide what a terminal shows.)"""
    model = str(tiny_model_dirs["llama"])
    argv = ["inspect", "--model", model, "--max-memory", "cpu=1KB", "--position", "999", "--out", str(tmp_path / "r")]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src"), "HF_HUB_OFFLINE": "1"}
    command = [sys.executable, "-m", "layerscope", "--quiet", *(["--debug"] if debug else []), *argv]
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)
    if debug:
        assert done.returncode == 1
        first, second = done.stderr.splitlines()[:2]
        meta = "Some parameters are on the meta device because they were offloaded to the disk."
        assert first == f"accelerate.big_modeling: WARNING: {meta}" and second.startswith("Traceback")
        return
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1, done.stderr
    assert lines[0].startswith("layerscope: error: position 999 is outside prompt"), lines
