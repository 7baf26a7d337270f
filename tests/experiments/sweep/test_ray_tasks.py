"""``ray_tasks``: the function a Ray worker runs, called here without Ray: a run directory back as bytes."""

from __future__ import annotations

import json

from layerscope.errors import LayerscopeError
from layerscope.experiments.echo import EchoConfig
from layerscope.experiments.sweep.config import plain
from layerscope.experiments.sweep.ray_tasks import one_line, run_model_task
from layerscope.model_spec import ModelSpec


def test_a_task_returns_its_run_directory_as_bytes(tiny_model_dirs):
    config = EchoConfig(models=(ModelSpec(str(tiny_model_dirs["llama"])),), tokens=("red",), max_new_tokens=1)
    payload = run_model_task("echo", plain(config.to_record()))
    assert payload["status"] == "ok", payload
    files = payload["files"]
    assert {"run.json", "echo.csv", "rates.csv"} <= set(files) and all(isinstance(b, bytes) for b in files.values())
    record = json.loads(files["run.json"])
    assert record["config"] == plain(config.to_record()) and set(record["files"]) <= set(files)
    assert payload["seconds"] > 0 and payload["host"]

    failed = run_model_task("echo", plain(EchoConfig(models=(ModelSpec("/no/such/model"),)).to_record()))
    assert failed["status"] == "failed" and "\n" not in failed["reason"] and "files" not in failed


def test_one_line():
    assert one_line(LayerscopeError("no model at 'x'\nmore")) == "no model at 'x'"
    assert one_line(ValueError("bad\nvalue")) == "ValueError: bad" and one_line(KeyError()) == "KeyError"
