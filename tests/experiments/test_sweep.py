"""``sweep``: one experiment over many models, one after another here and as tasks on one local Ray instance.

The Ray tests share one module-scoped local instance (2 CPUs; Ray starts slowly). A sweep's per-model tables
are checked against the same experiment run on each model alone; a sweep killed with SIGKILL is rerun and must
not redo the models that had finished; a model that cannot be loaded is one row and one line, exit code 2.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import pandas as pd
import pytest
from tiny_models import save_tiny_model

import layerscope
from layerscope.cli import main
from layerscope.experiments.echo import EchoConfig
from layerscope.experiments.sweep import finished, model_memory, planned_name
from layerscope.experiments.sweep import ray_tasks as sweep_ray
from layerscope.model_spec import ModelSpec

SRC = Path(__file__).resolve().parents[2] / "src"
TABLES = ("echo", "completions", "rates")


@pytest.fixture(scope="module")
def two_tiny(tmp_path_factory) -> list[str]:
    """Two tiny random models saved as Hugging Face checkpoints."""
    root = tmp_path_factory.mktemp("sweep-models")
    return [str(save_tiny_model(arch, root / arch, seed=i)) for i, arch in enumerate(("llama", "qwen3"))]


@pytest.fixture(scope="module")
def broken_model(tmp_path_factory) -> str:
    """A model directory that cannot be loaded (its config names no architecture transformers knows)."""
    path = tmp_path_factory.mktemp("broken") / "broken"
    path.mkdir()
    (path / "config.json").write_text(json.dumps({"model_type": "no-such-architecture"}))
    return str(path)


@pytest.fixture(scope="module")
def ray_instance():
    """One local Ray instance (2 CPUs) for every Ray test of this module."""
    pytest.importorskip("ray")
    ray = sweep_ray.start_local_ray(num_cpus=2)
    yield ray
    ray.shutdown()


def _read(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, keep_default_na=False)


def _same_table(a: pd.DataFrame, b: pd.DataFrame) -> None:
    """Equal tables, cell by cell as written: text and integers exactly, fractions to float32 rounding (the
    processes' thread counts differ)."""
    a, b = a.astype(str).reset_index(drop=True), b.astype(str).reset_index(drop=True)
    assert list(a.columns) == list(b.columns) and len(a) == len(b)
    for column in a.columns:
        left, right = a[column], b[column]
        if left.equals(right):
            continue
        numbers = pd.to_numeric(left, errors="coerce"), pd.to_numeric(right, errors="coerce")
        assert (
            numbers[0].notna().equals(numbers[1].notna())
            and (left[numbers[0].isna()] == right[numbers[1].isna()]).all()
        ), column
        assert ((numbers[0] - numbers[1]).abs() <= 1e-7 + 1e-5 * numbers[1].abs()).fillna(True).all(), column


# ----- without Ray --------------------------------------------------------------------------------------
def test_sequential_layers_and_ablate_merge_on_relative_depth(two_tiny, tmp_path):
    """``--no-ray``: the models one after another; layers' metrics and ablate's curves merged across models."""
    out = tmp_path / "layers"
    argv = ["--quiet", "sweep", "layers", "--model", two_tiny[0], "--model", f"second={two_tiny[1]}"]
    code = main([*argv, "--set", "colors", "--set", "months", "--no-ray", "--out", str(out)])
    assert code == 0
    status = _read(out / "sweep.csv")
    assert list(status["model"]) == ["llama", "second"] and set(status["status"]) == {"ok"}
    merged = _read(out / "metrics.csv")
    for name in ("llama", "second"):
        alone = _read(out / name / "metrics.csv")
        _same_table(merged[merged["model"] == name].reset_index(drop=True), alone)
    blocks = merged[merged["layer"] != "embed"]
    assert ((blocks["depth"] / 3 - blocks["relative_depth"]).abs() < 1e-9).all()  # tiny models have 3 blocks
    figure = json.loads((out / "sweep.plotly.json").read_text())
    assert {t["name"] for t in figure["data"]} == {"llama", "second"}
    assert (out / "metrics.png").is_file()
    record = json.loads((out / "run.json").read_text())
    assert record["command"][:3] == ["layerscope", "sweep", "layers"] and "--no-ray" in record["command"]

    out = tmp_path / "ablate"
    argv = ["--quiet", "sweep", "ablate", "--model", two_tiny[0], "--model", two_tiny[1], "--n", "12"]
    assert main([*argv, "--ops", "+", "--no-ray", "--out", str(out)]) == 0
    accuracy = _read(out / "accuracy.csv")
    assert set(accuracy["model"]) == {"llama", "qwen3"}
    single = accuracy[accuracy["config"] != "baseline"]
    expected = single["removed_layers"].astype(int).add(1).div(3)
    assert (single["relative_depth"].astype(float) - expected).abs().max() < 1e-9
    assert (accuracy.loc[accuracy["config"] == "baseline", "relative_depth"] == "").all()


def test_without_ray_installed_the_models_run_here(two_tiny, tmp_path, monkeypatch):
    monkeypatch.setattr(sweep_ray, "ray_available", lambda: False)
    result = layerscope.sweep("echo", models=two_tiny[:1], out=tmp_path / "s", tokens=("red", "blue"), max_new_tokens=1)
    assert result.backend == "sequential (Ray is not installed)"
    assert list(result.status["status"]) == ["ok"] and len(result.merged["echo"]) == 2 * 2


def test_names_memory_and_finished_runs(two_tiny, tmp_path):
    assert planned_name(ModelSpec()) == "gemma-3-270m-q4_k_m"
    assert planned_name(ModelSpec(two_tiny[0])) == "llama" and planned_name(ModelSpec("x", name="mine")) == "mine"
    default_bytes = model_memory(ModelSpec())  # the GGUF's parameters as float32, plus the runtime
    assert 268_000_000 * 4 < default_bytes < 268_000_000 * 4 + (2 << 30)
    assert model_memory(ModelSpec("/no/such/model")) == 1 << 30
    assert not finished(tmp_path, EchoConfig())


# ----- on a local Ray instance -----------------------------------------------------------------------------
@pytest.mark.default_model
def test_sweep_on_ray_equals_each_model_alone(ray_instance, two_tiny, tmp_path):
    """The default model and two tiny ones as Ray tasks: every table equals the model's own echo run."""
    models = [None, *two_tiny]
    result = layerscope.sweep("echo", models=models, out=tmp_path / "sweep", max_new_tokens=3)
    assert result.backend == "ray (local)"
    assert list(result.status["status"]) == ["ok"] * 3, result.status
    names = list(result.status["model"])
    assert names == ["gemma-3-270m-q4_k_m", "llama", "qwen3"]
    assert set(result.status["memory_request"]) and (result.status["memory_request"] > 0).all()
    merged = {
        stem: pd.read_csv(tmp_path / "sweep" / f"{stem}.csv", dtype=str, keep_default_na=False) for stem in TABLES
    }
    for model, name in zip(models, names):
        layerscope.echo(models=[model], max_new_tokens=3, out=tmp_path / "alone" / name)
        for stem in TABLES:
            alone = _read(tmp_path / "alone" / name / f"{stem}.csv")
            _same_table(_read(tmp_path / "sweep" / name / f"{stem}.csv"), alone)
            part = merged[stem][merged[stem]["model"] == alone["model"].iloc[0]].reset_index(drop=True)
            _same_table(part, alone)
        record = json.loads((tmp_path / "sweep" / name / "run.json").read_text())
        assert record["command"][-2:] == [
            "--out",
            str(tmp_path / "sweep" / name),
        ]  # the driver's path, not the worker's
    page = (tmp_path / "sweep" / "echo.md").read_text()
    assert "| Word | gemma-3-270m-q4_k_m | llama | qwen3 |" in page


def test_killed_sweep_resumes_without_redoing_finished_models(ray_instance, two_tiny, tmp_path):
    """SIGKILL the driver once a model has finished; the rerun skips it (its files untouched) and runs the rest."""
    out = tmp_path / "sweep"
    address = ray_instance.get_runtime_context().gcs_address
    models = [two_tiny[0], two_tiny[1], f"third={two_tiny[0]}"]
    argv = ["sweep", "echo", *[a for m in models for a in ("--model", m)], "--tokens", "red,blue,John"]
    argv += ["--max-new-tokens", "2", "--ray-address", address, "--out", str(out)]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")]),
        "OMP_NUM_THREADS": "1",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "layerscope", "--quiet", *argv],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    dirs = [out / "llama", out / "qwen3", out / "third"]
    deadline = time.monotonic() + 300
    while not any((d / "run.json").is_file() for d in dirs):
        assert proc.poll() is None, f"the sweep ended before it could be killed: {proc.communicate()[1]}"
        assert time.monotonic() < deadline, "no model finished"
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    done = {d.name: (d / "run.json").stat().st_mtime_ns for d in dirs if (d / "run.json").is_file()}
    assert 1 <= len(done) < len(dirs)  # killed mid-way
    assert main(["--quiet", *argv]) == 0
    status = _read(out / "sweep.csv").set_index("model")["status"]
    for d in dirs:
        assert status[d.name] == ("skipped" if d.name in done else "ok")
        if d.name in done:
            assert (d / "run.json").stat().st_mtime_ns == done[d.name]
    assert len(_read(out / "echo.csv")) == len(dirs) * 3 * 2


def test_a_model_that_fails_to_load_leaves_the_others(ray_instance, two_tiny, broken_model, tmp_path, capsys):
    out = tmp_path / "sweep"
    argv = ["--quiet", "sweep", "echo", "--model", two_tiny[0], "--model", broken_model, "--model", two_tiny[1]]
    assert main([*argv, "--tokens", "red,blue", "--max-new-tokens", "1", "--out", str(out)]) == 2
    captured = capsys.readouterr()
    lines = [line for line in captured.err.splitlines() if line.startswith("layerscope")]  # the rest is the summary
    assert len(lines) == 1 and lines[0].startswith("layerscope: error: sweep: 1 of 3 models failed: broken (")
    status = _read(out / "sweep.csv").set_index("model")
    assert list(status["status"]) == ["ok", "failed", "ok"] and "broken" in status.loc["broken", "source"]
    assert status.loc["broken", "reason"] and "\n" not in status.loc["broken", "reason"]
    assert finished(out / "llama", _config_of(out / "llama")) and not (out / "broken").exists()
    assert set(_read(out / "echo.csv")["model"]) == {"llama", "qwen3"}


def _config_of(run_dir: Path):
    from layerscope.experiments.sweep import config_of

    record = json.loads((run_dir / "run.json").read_text())
    return config_of(record["experiment"], record["config"])


def test_models_that_do_not_fit_together_run_one_at_a_time(ray_instance, two_tiny, tmp_path):
    """Each task asks for 60% of the node's memory: two never fit side by side, though there are 2 CPUs."""
    memory = int(0.6 * ray_instance.cluster_resources()["memory"])
    result = layerscope.sweep(
        "echo", models=two_tiny, out=tmp_path / "s", memory_per_model=memory, tokens=("red",), max_new_tokens=1
    )
    status = result.status
    assert list(status["status"]) == ["ok", "ok"] and list(status["memory_request"]) == [memory, memory]
    start = [datetime.fromisoformat(text).timestamp() for text in status["started"]]
    first, second = sorted((s, s + seconds) for s, seconds in zip(start, status["seconds"]))
    assert first[1] <= second[0] + 0.05, (first, second)  # the second began after the first ended
