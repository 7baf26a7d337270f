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


def test_quantize_to_gguf_writes_one_file(tmp_path, capsys):
    source = write_tiny_gguf(tmp_path / "tiny.gguf")
    out = tmp_path / "tiny-bf16.gguf"
    assert main(["quantize", str(source), "--to", "gguf", "--type", "BF16", "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert captured.out.strip() == str(out) and out.is_file()
    assert "GGUF BF16: 16 matrices quantized, 5 tensors kept" in captured.err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny-bf16.gguf", "tiny.gguf"]


def test_an_interrupted_quantize_says_nothing_was_written(tmp_path, tiny_model_dirs, capsys, monkeypatch):
    from layerscope.convert import mlx_write

    def interrupted(arrays, out, parameters):
        raise KeyboardInterrupt

    monkeypatch.setattr(mlx_write, "_save_shards", interrupted)
    out = tmp_path / "q"
    assert main(["--quiet", "quantize", str(tiny_model_dirs["llama"]), "--to", "mlx", "--out", str(out)]) == 130
    assert capsys.readouterr().err.strip() == f"layerscope: interrupted; nothing was written to {out}"
    assert not list(tmp_path.iterdir())
