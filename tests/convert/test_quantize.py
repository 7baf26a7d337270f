"""``layerscope.quantize``: options checked before anything is read, output written whole or not at all,
and the default model re-quantized to MLX 4-bit equal to ``mlx.core.quantize``."""

from __future__ import annotations

import json

import numpy as np
import pytest

import layerscope
from layerscope.convert import mlx_write
from layerscope.errors import LayerscopeError
from layerscope.experiment import ConfigError

mx = pytest.importorskip("mlx.core")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"to": "onnx"}, "to='onnx' is not a format quantize writes; valid: 'mlx', 'gguf'"),
        ({"bits": 7}, "bits=7 is not supported by MLX; valid: 2, 3, 4, 5, 6, 8"),
        ({"bits": True}, "bits=True is not supported"),
        ({"group_size": 16}, "group_size=16 is not supported by MLX; valid: 32, 64, 128"),
        ({"dtype": "int8"}, "dtype='int8' is not supported; valid: 'float16', 'bfloat16', 'float32'"),
        ({"to": "gguf", "type": "Q4_K"}, "type='Q4_K' is not a type the gguf package quantizes to; valid: 'F32'"),
        ({"to": "gguf", "out": "x.gguf"}, "out='x.gguf' names a .gguf file; give the run directory to write"),
        ({"out": ""}, "out='' is not a path"),
    ],
)
def test_bad_options_are_refused_before_reading(tmp_path, options, message):
    options = {"out": tmp_path / "q", **options}
    if options["out"] == "x.gguf":
        options["out"] = str(tmp_path / "x.gguf")
        message = message.replace("'x.gguf'", repr(options["out"]))
    with pytest.raises(ConfigError) as info:
        layerscope.quantize(str(tmp_path / "no-such-model"), **options)  # the source is never looked at
    assert message in str(info.value)
    assert not list(tmp_path.iterdir())


def test_an_existing_out_needs_force_and_is_then_replaced(tmp_path, tiny_model_dirs):
    source = str(tiny_model_dirs["llama"])
    out = tmp_path / "q"
    out.mkdir()  # an empty directory is fine
    assert layerscope.quantize(source, bits=8, group_size=32, out=out) == out
    with pytest.raises(ConfigError, match="exists"):
        layerscope.quantize(source, bits=4, group_size=32, out=out)
    assert json.loads((out / "config.json").read_text())["quantization"]["bits"] == 8
    (out / "stale.txt").write_text("from before")
    layerscope.quantize(source, bits=4, group_size=32, out=out, force=True)
    assert json.loads((out / "config.json").read_text())["quantization"]["bits"] == 4
    assert not (out / "stale.txt").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["q"]  # no temporary directory left
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")]  # nor a lock, mark or staging folder
    (tmp_path / "link").symlink_to(out)
    with pytest.raises(LayerscopeError, match="is a symbolic link; give a directory, or --force"):
        layerscope.quantize(source, out=tmp_path / "link")
    layerscope.quantize(source, bits=8, group_size=32, out=tmp_path / "link", force=True)  # the link is replaced
    assert not (tmp_path / "link").is_symlink()
    assert json.loads((out / "config.json").read_text())["quantization"]["bits"] == 4  # its target untouched


def test_a_run_is_reopened_by_load_run_and_loads_as_a_model(tmp_path, tiny_model_dirs):
    out = tmp_path / "q"
    layerscope.quantize(str(tiny_model_dirs["llama"]), bits=4, group_size=32, out=out)
    loaded = layerscope.load_run(out)
    assert type(loaded).__name__ == "QuantizeResult" and loaded.path == out
    assert (loaded.config.to, loaded.config.bits, loaded.config.group_size) == ("mlx", 4, 32)
    assert loaded.written["quantized"] == 23 and loaded.written["files"] == ["model.safetensors"]
    record = json.loads((out / "run.json").read_text())
    assert record["command"] == ["layerscope", "quantize", "--group-size", "32",
                                 str(tiny_model_dirs["llama"]), "--out", str(out)]  # fmt: skip
    model = layerscope.load_model(str(out))  # run.json beside the model does not disturb the loader
    assert model.n_layers == 3


def test_a_gguf_run_holds_model_gguf(tmp_path):
    from tiny_gguf import write_tiny_gguf

    source = write_tiny_gguf(tmp_path / "tiny.gguf")
    path = layerscope.quantize(str(source), to="gguf", type="Q8_0", out=tmp_path / "q8")
    assert path == tmp_path / "q8" / "model.gguf" and path.is_file()
    assert sorted(p.name for p in path.parent.iterdir()) == ["model.gguf", "run.json"]
    loaded = layerscope.load_run(tmp_path / "q8")
    assert loaded.path == path and loaded.written["type"] == "Q8_0"


@pytest.mark.parametrize("interruption", [KeyboardInterrupt, RuntimeError])
def test_an_interrupted_run_leaves_nothing_and_a_rerun_finishes(tmp_path, tiny_model_dirs, monkeypatch, interruption):
    real = mlx_write._save_shards

    def save_then_fail(arrays, out, parameters):
        real(arrays, out, parameters)  # the weights are on disk when the run stops
        raise interruption()

    monkeypatch.setattr(mlx_write, "_save_shards", save_then_fail)
    source = str(tiny_model_dirs["llama"])
    with pytest.raises(interruption):
        layerscope.quantize(source, bits=4, group_size=32, out=tmp_path / "q")
    assert not list(tmp_path.iterdir())  # a fresh directory is removed again
    (tmp_path / "kept").mkdir()
    (tmp_path / "kept" / "config.json").write_text("{}")
    with pytest.raises(interruption):  # --force empties it; the run is then marked unfinished
        layerscope.quantize(source, bits=4, group_size=32, out=tmp_path / "kept", force=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kept"]
    assert sorted(p.name for p in (tmp_path / "kept").iterdir()) == [".layerscope-run"]  # no half model
    monkeypatch.setattr(mlx_write, "_save_shards", real)
    layerscope.quantize(source, bits=4, group_size=32, out=tmp_path / "kept")  # resumed without --force
    assert json.loads((tmp_path / "kept" / "run.json").read_text())["experiment"] == "quantize"


_SLOW_QUANTIZE = """
import sys, time
from layerscope.convert import mlx_write
real = mlx_write._save_shards
def save_then_wait(arrays, out, parameters):
    names = real(arrays, out, parameters)
    print("saved", flush=True)
    time.sleep(120)
    return names
mlx_write._save_shards = save_then_wait
from layerscope.cli import main
sys.exit(main(["--quiet", "quantize", sys.argv[1], "--to", "mlx", "--group-size", "32", "--out", sys.argv[2]]))
"""


def test_a_second_run_to_the_same_out_is_refused_and_a_killed_run_leaves_nothing_a_rerun_keeps(
    tmp_path, tiny_model_dirs, capsys
):
    """Two runs to one ``--out``: the second is refused while the first runs; the first, SIGKILLed with its model
    half written, leaves temporaries that the next run removes."""
    import os
    import signal
    import subprocess
    import sys

    from signal_when import signal_when

    from layerscope.cli import main

    out = tmp_path / "q"
    source = str(tiny_model_dirs["llama"])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen(
        [sys.executable, "-c", _SLOW_QUANTIZE, source, str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, env=env,
    )  # fmt: skip

    def saved_then_second_run_refused():
        if not any(p.name == "model.safetensors" for p in tmp_path.rglob("*")):
            return False
        code = main(["--quiet", "quantize", source, "--to", "mlx", "--group-size", "32", "--out", str(out)])
        err = capsys.readouterr().err
        assert code == 2 and f"--out {str(out)!r} is in use by another run (process {proc.pid})" in err, err
        return True

    signal_when(proc, saved_then_second_run_refused, signal.SIGKILL, what="killed")
    assert [p for p in tmp_path.rglob("*") if p.name.endswith(".part")]  # the killed run's staging folder
    assert main(["--quiet", "quantize", source, "--to", "mlx", "--group-size", "32", "--out", str(out)]) == 0
    assert not [p for p in tmp_path.rglob("*") if p.name.endswith(".part") or p.name.startswith(".layerscope")]
    assert json.loads((out / "run.json").read_text())["experiment"] == "quantize"


def test_a_link_inside_a_run_directory_being_written_is_not_followed(tmp_path, tiny_model_dirs):
    """The tour writes its re-quantized models under its own ``quantized/`` with ``force``: a link planted there
    is refused, never written through."""
    from layerscope.experiments.tour import requantize
    from layerscope.model_spec import ModelSpec
    from layerscope.rundir import RunDir

    victim = tmp_path / "victim"
    (victim / "mlx-8bit").mkdir(parents=True)
    (victim / "mlx-8bit" / "keep.txt").write_text("keep")
    tour = RunDir(tmp_path / "tour")
    tour.claim("tour")
    try:
        (tour.path / "quantized").symlink_to(victim, target_is_directory=True)
        with pytest.raises(LayerscopeError, match="is a symbolic link inside the run directory"):
            requantize(ModelSpec(str(tiny_model_dirs["llama"])), tour.path / "quantized")
    finally:
        tour.unlock()
    assert sorted(p.name for p in victim.rglob("*")) == ["keep.txt", "mlx-8bit"]


def _copy_model(source, where):
    import shutil

    shutil.copytree(source, where)
    return where


def test_side_files_are_copied_only_when_they_belong_and_are_plain_bounded_files(tmp_path, tiny_model_dirs):
    model = _copy_model(tiny_model_dirs["llama"], tmp_path / "model")
    secret = tmp_path / "secret.txt"
    secret.write_text('{"token": "hunter2"}')
    (model / "env.txt").symlink_to("/proc/self/environ")
    (model / "notes.txt").write_text("not the model's")
    out = layerscope.quantize(str(model), bits=4, group_size=32, out=tmp_path / "q")
    copied = sorted(p.name for p in out.iterdir() if p.suffix != ".safetensors")
    assert copied == ["config.json", "generation_config.json", "model.safetensors.index.json", "run.json",
                      "tokenizer.json", "tokenizer_config.json"]  # fmt: skip
    (model / "special_tokens_map.json").symlink_to(secret)  # a file of the model's that leads out of its folder
    with pytest.raises(LayerscopeError, match="special_tokens_map.json' is a link to .*outside the model's folder"):
        layerscope.quantize(str(model), bits=4, group_size=32, out=tmp_path / "q2")
    (model / "special_tokens_map.json").unlink()
    with open(model / "merges.txt", "wb") as handle:  # 2 GB, sparse: no disk used
        handle.truncate(2 << 30)
    with pytest.raises(LayerscopeError, match=r"merges.txt' holds 2,147,483,648 bytes, more than"):
        layerscope.quantize(str(model), bits=4, group_size=32, out=tmp_path / "q3")
    (model / "merges.txt").unlink()
    (model / "vocab.json").hardlink_to(secret)
    with pytest.raises(LayerscopeError, match="vocab.json' is hard-linked"):
        layerscope.quantize(str(model), bits=4, group_size=32, out=tmp_path / "q4")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model", "q", "secret.txt"]  # refused before writing


def test_a_hub_cache_snapshot_links_into_its_own_blobs(tmp_path, tiny_model_dirs):
    repo = tmp_path / "models--org--tiny"
    snapshot = repo / "snapshots" / "abc"
    snapshot.mkdir(parents=True)
    (repo / "blobs").mkdir()
    for item in tiny_model_dirs["llama"].iterdir():
        (repo / "blobs" / item.name).write_bytes(item.read_bytes())
        (snapshot / item.name).symlink_to(f"../../blobs/{item.name}")
    out = layerscope.quantize(str(snapshot), bits=4, group_size=32, out=tmp_path / "q")
    assert (out / "tokenizer.json").read_bytes() == (tiny_model_dirs["llama"] / "tokenizer.json").read_bytes()
    assert not (out / "tokenizer.json").is_symlink()


def test_weights_a_dtype_cannot_hold_are_refused(tmp_path, tiny_model_dirs):
    from safetensors.torch import load_file, save_file

    model = _copy_model(tiny_model_dirs["llama"], tmp_path / "model")
    weights = load_file(model / "model.safetensors")
    name = "model.layers.1.mlp.up_proj.weight"
    weights[name] = weights[name] / weights[name].abs().max() * 1e5  # finite, past float16's 65504
    save_file(weights, model / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(LayerscopeError, match=f"{name} has values up to 1e\\+05, beyond what float16 holds"):
        layerscope.quantize(str(model), bits=4, group_size=32, dtype="float16", out=tmp_path / "q16")
    assert not (tmp_path / "q16").exists()
    out = layerscope.quantize(str(model), bits=4, group_size=32, dtype="float32", out=tmp_path / "q32")
    written = mx.load(str(out / "model.safetensors"))
    assert all(mx.all(mx.isfinite(a)).item() for a in written.values() if a.dtype != mx.uint32)


@pytest.mark.default_model
def test_default_model_to_mlx_4bit_equals_mlx_quantize(full_tour):
    """The default model (its Q4_K_M GGUF, dequantized) re-quantized to MLX 4-bit: the triplets of the embedding
    and of one block equal ``mlx.core.quantize``, layerscope loads the directory, norms are exact. The directory is
    the one the session's full tour wrote for its compare step (``layerscope.quantize(to="mlx", bits=4,
    group_size=64)``, ``tests/conftest.py``) rather than a second quantization of the same model."""
    from safetensors import safe_open

    from layerscope.convert.float_weights import open_float_weights
    from layerscope.experiments.tour import COMPARE_FORMATS

    assert ("mlx-4bit", 4) in COMPARE_FORMATS
    out = full_tour / "quantized" / "mlx-4bit"
    written = mx.load(str(out / "model.safetensors"))
    config = json.loads((out / "config.json").read_text())
    assert config["quantization"] == {"group_size": 64, "bits": 4, "mode": "affine"}
    names = [
        "model.embed_tokens.weight",
        "model.layers.5.self_attn.k_proj.weight",
        "model.layers.17.mlp.down_proj.weight",
    ]
    dequantized = {}
    with open_float_weights("default") as weights:
        dtype = getattr(mx, mlx_write.conversion_dtype(weights.config, None))
        expected_names = set()
        for name in weights.names:  # every matrix (widths 640, 1024, 2048) is quantized, every vector kept
            module = name.removesuffix(".weight")
            matrix = len(weights.shapes[name]) == 2
            expected_names |= {f"{module}.weight", f"{module}.scales", f"{module}.biases"} if matrix else {name}
        assert set(written) == expected_names
        for name in names:
            q, s, b = mx.quantize(mx.array(weights.tensor(name).numpy()).astype(dtype), 64, 4)
            module = name[: -len(".weight")]
            for part, expected in zip(("weight", "scales", "biases"), (q, s, b)):
                assert mx.array_equal(written[f"{module}.{part}"], expected).item(), (name, part)
            dequantized[name] = np.array(mx.dequantize(q, s, b, 64, 4).astype(mx.float32))
        norm = weights.tensor("model.norm.weight").numpy()
    with safe_open(str(out / "model.safetensors"), framework="numpy") as handle:
        assert handle.metadata() == {"format": "mlx"}
        assert np.array_equal(handle.get_tensor("model.norm.weight"), norm)  # float32, as the config's dtype
    model = layerscope.load_model(str(out))  # layerscope's loader: weights equal mlx.core.dequantize
    assert (model.n_layers, model.d_model, model.name) == (18, 640, "mlx-4bit")
    state = model.module.state_dict()
    for name, expected in dequantized.items():
        assert np.array_equal(state[name].numpy(), expected), name
    ids = model.tokenizer("The capital of France is", return_tensors="pt").input_ids
    import torch

    with torch.no_grad():
        logits = model.module(ids).logits[0, -1]
    assert torch.isfinite(logits).all()


def test_without_mlx_the_mlx_output_is_refused_in_one_line(tmp_path, tiny_model_dirs, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "mlx.core", None)  # as if the package were not installed
    with pytest.raises(LayerscopeError, match=r"MLX output needs the mlx package .*pip install 'layerscope\[mlx\]'"):
        layerscope.quantize(str(tiny_model_dirs["llama"]), out=tmp_path / "q")
    assert not list(tmp_path.iterdir())
