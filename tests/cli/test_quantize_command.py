"""``layerscope quantize``: writes the directory or file, prints its path, replaces only with --force."""

from __future__ import annotations

import json

import pytest
from tiny_gguf import write_tiny_gguf

from layerscope.cli import main

pytest.importorskip("mlx.core")


def test_quantize_to_mlx_prints_the_directory(tmp_path, tiny_model_dirs, capsys):
    out = tmp_path / "llama-mlx-3bit"
    argv = ["quantize", str(tiny_model_dirs["llama"]), "--to", "mlx", "--bits", "3", "--group-size", "32"]
    assert main(["--quiet", *argv, "--dtype", "bfloat16", "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert captured.out.strip() == str(out)
    config = json.loads((out / "config.json").read_text())
    assert config["quantization"] == {"group_size": 32, "bits": 3, "mode": "affine"}
    assert main(["--quiet", *argv, "--out", str(out)]) == 2
    assert (
        capsys.readouterr().err.strip()
        == f"layerscope: error: --out {out} exists; choose a new path or replace it (force=True, --force)"
    )
    assert main(["--quiet", *argv[:-4], "--bits", "8", "--group-size", "64", "--out", str(out), "--force"]) == 0
    assert json.loads((out / "config.json").read_text())["quantization"]["bits"] == 8


def test_quantize_to_gguf_writes_one_file_in_its_run_directory(tmp_path, capsys):
    source = write_tiny_gguf(tmp_path / "tiny.gguf")
    out = tmp_path / "tiny-bf16"
    assert main(["quantize", str(source), "--to", "gguf", "--type", "BF16", "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert captured.out.strip() == str(out / "model.gguf") and (out / "model.gguf").is_file()
    assert "GGUF BF16: 16 matrices quantized, 5 tensors kept" in captured.err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny-bf16", "tiny.gguf"]


def test_ctrl_c_prints_one_line(tmp_path, tiny_model_dirs, capsys, monkeypatch):
    """A real SIGINT in the middle of writing: exit 130 and the one interrupted line, nothing half written."""
    import os
    import signal

    from layerscope.cli.main import INTERRUPTED_LINE
    from layerscope.convert import mlx_write

    def interrupted(arrays, out, parameters):
        os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(mlx_write, "_save_shards", interrupted)
    out = tmp_path / "q"
    assert main(["--quiet", "quantize", str(tiny_model_dirs["llama"]), "--to", "mlx", "--out", str(out)]) == 130
    assert capsys.readouterr().err.strip() == INTERRUPTED_LINE
    assert not list(tmp_path.iterdir())
    # The interruption ended with its command: a run from Python in the same process goes ahead.
    from layerscope.runner import INTERRUPTED

    assert not INTERRUPTED.is_set()
