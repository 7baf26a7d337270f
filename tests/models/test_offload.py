"""Models placed by accelerate: blocks offloaded to disk give the numbers of the model on one device.

The tiny llama is loaded with ``--max-memory`` small enough that accelerate sends most blocks to disk; the
default model with an explicit ``device_map`` that keeps blocks 0-5 on the CPU and puts blocks 6-17 and the
final norm on disk. Each experiment on it is compared with the same experiment on the model loaded plainly.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import layerscope
from layerscope import ModelSpec
from layerscope.capture.layer_spec import FINAL_NORM, parse_layers
from layerscope.capture.logit_lens import lens_logits
from layerscope.models.loading import load_spec

PROMPTS = ["5+2=", "The word is red. The word is", "When John and Mary went to the store, John gave the bag to"]
ROOT = Path(__file__).resolve().parents[2]


def assert_tables_equal(got, want, exact: bool = False) -> None:
    got_tables, want_tables = got.tables(), want.tables()
    assert list(got_tables) == list(want_tables)
    for stem, frame in want_tables.items():
        pd.testing.assert_frame_equal(got_tables[stem], frame, check_exact=exact, obj=stem)


@pytest.fixture(scope="module")
def offloaded_tiny(tiny_model_dirs, tmp_path_factory):
    """The tiny llama with 400 KiB of its weights on the CPU and the rest on disk, and its spec."""
    spec = ModelSpec(
        str(tiny_model_dirs["llama"]), max_memory="cpu=400KiB", offload_dir=str(tmp_path_factory.mktemp("offload"))
    )
    return load_spec(spec), spec


def test_most_blocks_of_the_tiny_model_go_to_disk(offloaded_tiny):
    model, _ = offloaded_tiny
    placed = model.device_map
    assert [placed[f"model.layers.{i}"] for i in range(model.n_layers)].count("disk") >= 2
    disk_block = next(i for i in range(model.n_layers) if placed[f"model.layers.{i}"] == "disk")
    assert model.layers[disk_block].mlp.up_proj.weight.device.type == "meta"  # read from disk at each call
    assert placed["lm_head"] == "disk" and model.unembedding_matrix.device.type == "meta"
    assert model.device == torch.device("cpu")


def test_capture_on_disk_equals_one_device(offloaded_tiny, tiny_models, tmp_path):
    model, spec = offloaded_tiny
    plain = tiny_models["llama"]
    layers = parse_layers("all", plain.n_layers) + [FINAL_NORM]
    got = layerscope.residuals(PROMPTS, model=spec, positions="all", batch_size=2, out=tmp_path / "run")
    want = layerscope.residuals(PROMPTS, model=plain, positions="all", batch_size=2)
    np.testing.assert_array_equal(np.asarray(got.residuals), np.asarray(want.residuals))
    pd.testing.assert_frame_equal(got.table, want.table)
    from layerscope.capture.engine import capture_residuals
    from layerscope.capture.prompts import prompts_at

    prompts = prompts_at([plain.encode(p) for p in PROMPTS], "all")
    np.testing.assert_array_equal(
        capture_residuals(model, prompts, layers, padding_side="left"),
        capture_residuals(plain, prompts, layers, padding_side="left"),
    )
    record = json.loads((tmp_path / "run" / "run.json").read_text())
    assert record["config"]["model"]["max_memory"] == "cpu=400KiB"


def test_lens_tokens_and_inspect_on_disk_equal_one_device(offloaded_tiny, tiny_models):
    model, _ = offloaded_tiny
    plain = tiny_models["llama"]
    rows = np.random.default_rng(0).normal(size=(4, plain.d_model)).astype(np.float32)
    torch.testing.assert_close(lens_logits(model, rows), lens_logits(plain, rows), rtol=0, atol=0)
    assert_tables_equal(layerscope.tokens(["digits"], model=model), layerscope.tokens(["digits"], model=plain), True)
    prompts = ["5+2=", "3+4="]
    assert_tables_equal(layerscope.inspect(prompts, model=model), layerscope.inspect(prompts, model=plain), True)


def test_a_spec_with_placement_round_trips_through_a_run_directory(offloaded_tiny, tmp_path):
    _, spec = offloaded_tiny
    result = layerscope.layers(tokens="red,green,blue,one,two", model=spec, layers="embed,0,-1", out=tmp_path / "r")
    back = layerscope.load_run(tmp_path / "r")
    assert back.config == result.config and back.config.models[0] == spec
    command = json.loads((tmp_path / "r" / "run.json").read_text())["command"]  # reproduces the placement
    assert command[command.index("--max-memory") + 1] == "cpu=400KiB"
    assert command[command.index("--offload-dir") + 1] == spec.offload_dir
    from layerscope.cli.declared import parse

    assert parse(command).models == (spec,)


# ----- the default model ----------------------------------------------------------------------------


def _blocks_on_disk(n_layers: int, first_on_disk: int) -> dict:
    blocks = {f"model.layers.{i}": "cpu" if i < first_on_disk else "disk" for i in range(n_layers)}
    return {"model.embed_tokens": "cpu", "lm_head": "cpu", **blocks, "model.norm": "disk", "model.rotary_emb": "cpu"}


@pytest.mark.default_model
def test_default_model_with_blocks_on_disk_gives_the_numbers_of_one_device(default_model, tmp_path):
    offloaded = layerscope.load_model(device_map=_blocks_on_disk(default_model.n_layers, 6), offload_dir=tmp_path)
    assert offloaded.layers[10].mlp.up_proj.weight.device.type == "meta"
    assert offloaded.final_norm.weight.device.type == "meta"

    # capture: every layer and the final norm, at every position, padded batches
    got = layerscope.residuals(PROMPTS, model=offloaded, layers="all", positions="all", batch_size=2)
    want = layerscope.residuals(PROMPTS, model=default_model, layers="all", positions="all", batch_size=2)
    np.testing.assert_array_equal(np.asarray(got.residuals), np.asarray(want.residuals))
    words = "January,March,July,red,blue,green"
    assert_tables_equal(
        layerscope.layers(tokens=words, model=offloaded, layers="embed,0,8,-1,norm"),
        layerscope.layers(tokens=words, model=default_model, layers="embed,0,8,-1,norm"),
    )
    prompts = ["5+2=", "9-2="]
    assert_tables_equal(layerscope.inspect(prompts, model=offloaded), layerscope.inspect(prompts, model=default_model))
    drop = ["4,5", "10"]  # block 10 is on disk: its forward is replaced while accelerate's hooks stay
    assert_tables_equal(
        layerscope.ablate(model=offloaded, n=12, drop=drop), layerscope.ablate(model=default_model, n=12, drop=drop)
    )
    words = "John,Mary,red"
    assert_tables_equal(
        layerscope.echo(models=offloaded, tokens=words, max_new_tokens=1),
        layerscope.echo(models=default_model, tokens=words, max_new_tokens=1),
    )


@pytest.mark.default_model
def test_default_model_in_bfloat16_halves_the_cache_and_echoes_the_same(
    default_model, default_bfloat16_cache, monkeypatch
):
    """Loaded from the session's bfloat16 cache entry (``tests/conftest.py``: converted once, by the cache)."""
    from layerscope.checkpoints.default import default_model_path
    from layerscope.models.gguf_cache import cache_entry, file_sha256

    sha = file_sha256(default_model_path())
    full = (cache_entry(sha, "float32") / "model.safetensors").stat().st_size  # the float32 entry default_model read
    monkeypatch.setenv("LAYERSCOPE_CACHE", str(default_bfloat16_cache.cache))
    assert cache_entry(sha, "bfloat16") == default_bfloat16_cache.entry
    bf16 = layerscope.load_model(dtype="bfloat16")
    assert bf16.dtype == torch.bfloat16
    half = (cache_entry(sha, "bfloat16") / "model.safetensors").stat().st_size
    assert abs(full - 2 * half) < 1 << 20, (full, half)  # the tensors' bytes halve; only the headers differ
    assert json.loads((cache_entry(sha, "bfloat16") / "layerscope.json").read_text())["dtype"] == "bfloat16"

    # seed 004's words, with and without BOS: the same echo verdict and the same top-1 token wherever float32's
    # top-1 leads its runner-up by more than bfloat16 resolves (2 ulps of a logit in [16, 32): 0.25); below that a
    # bfloat16 tie is broken by token id ('doctor' without BOS: 'who' and 'doctor' tie in bfloat16)
    got = layerscope.echo(models=bf16, max_new_tokens=0).table
    want = layerscope.echo(models=default_model, max_new_tokens=0).table
    assert len(want) > 20
    keys = ["set", "word", "bos"]
    assert got[keys].equals(want[keys])
    clear = np.log(want["p_top1"] / want["p_top2"]) > 0.25
    assert got.loc[clear, "echo"].equals(want.loc[clear, "echo"])
    assert (got["echo"] == want["echo"]).mean() > 0.9
    assert clear.mean() > 0.7 and (got["top1_id"] == want["top1_id"]).mean() > 0.9
    differ = (got["top1_id"] != want["top1_id"]) & clear
    assert not differ.any(), want.loc[differ, keys + ["top1", "p_top1", "top2", "p_top2"]]


@pytest.mark.default_model
def test_offloaded_capture_stays_within_max_memory_plus_buffers():
    """Measured in a fresh process (benchmarks/offload.py --child): the peak resident memory above the baseline
    (imports and tokenizer) of loading the model with --max-memory cpu=700MiB and capturing every layer."""
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "HF_HUB_OFFLINE": "1"}
    command = [sys.executable, str(ROOT / "benchmarks" / "offload.py"), "--child", "--max-memory", "cpu=700MiB"]
    done = subprocess.run([*command, "--n", "16"], capture_output=True, text=True, env=env, timeout=900, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    run = json.loads(done.stdout.strip().splitlines()[-1])
    assert run["blocks_on_disk"] >= run["n_blocks"] // 2
    limit = 700 * 2**20 + run["buffers"]
    margin = 320 * 2**20  # the model's Python objects, allocator slack, a block read back from disk
    assert run["peak_above_base"] <= limit + margin, run
    assert limit + margin < run["weights"] + run["buffers"]  # the bound is below what the whole model needs
