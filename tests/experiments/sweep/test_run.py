"""``run``: the models of a sweep as tasks on a local Ray instance, or one after another here; a rerun resumes.

Every Ray test shares one module-scoped local instance (2 CPUs, no dashboard, a small object store: Ray starts
slowly), and the sweeps run in this process, on that instance. A sweep of the default model and two tiny ones is
checked table for table against each model run alone; a sweep killed with SIGKILL (its own process) is rerun and
must not redo the models that had finished; a model that cannot be loaded is one row and one line, exit code 2,
and the others finish.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest
from signal_when import signal_when
from sweep_tables import read_table, same_table

import layerscope
from layerscope.cli import main
from layerscope.experiments.sweep import config_of, finished, ray_tasks

SRC = Path(__file__).resolve().parents[3] / "src"
TABLES = ("echo", "completions", "rates")
#: a few of seed 004's words (the whole set adds minutes on the default model and shows nothing more)
WORDS = ("John", "Mary", "France", "red", "January", "happy")


@pytest.fixture(scope="module")
def ray_instance():
    """One local Ray instance (2 CPUs) for every Ray test of this module."""
    pytest.importorskip("ray")
    ray = ray_tasks.start_local_ray(num_cpus=2)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def tiny_pair(tiny_model_dirs) -> list[str]:
    return [str(tiny_model_dirs["llama"]), str(tiny_model_dirs["qwen3"])]


@pytest.fixture(scope="module")
def broken_model(tmp_path_factory) -> str:
    """A model directory that cannot be loaded (its config names no architecture transformers knows)."""
    path = tmp_path_factory.mktemp("broken") / "broken"
    path.mkdir()
    (path / "config.json").write_text(json.dumps({"model_type": "no-such-architecture"}))
    return str(path)


@pytest.fixture(scope="module")
def failing_sweep(ray_instance, tiny_pair, broken_model, tmp_path_factory):
    """``layerscope sweep echo`` on Ray over a tiny model, a broken one and another tiny one, each task asking for
    60% of the node's memory: ``(exit code, the stderr lines, out, memory asked)``."""
    out = tmp_path_factory.mktemp("failing") / "sweep"
    memory = int(0.6 * ray_instance.cluster_resources()["memory"])
    argv = ["--quiet", "sweep", "echo", "--model", tiny_pair[0], "--model", broken_model, "--model", tiny_pair[1]]
    argv += ["--tokens", "red,blue", "--max-new-tokens", "1", "--memory-per-model", str(memory), "--out", str(out)]
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = main(argv)
    return code, err.getvalue().splitlines(), out, memory


# ----- on a local Ray instance -----------------------------------------------------------------------------
@pytest.mark.default_model
def test_sweep_on_ray_equals_each_model_alone(ray_instance, default_model, tiny_models, tiny_pair, tmp_path):
    """The default model and two tiny ones as Ray tasks: every table equals the model's own echo run (the
    references from the models this session already loaded)."""
    result = layerscope.sweep("echo", models=[None, *tiny_pair], out=tmp_path / "sweep", tokens=WORDS, max_new_tokens=2)
    assert result.backend == "ray (local)"
    assert list(result.status["status"]) == ["ok"] * 3, result.status
    names = list(result.status["model"])
    assert names == ["gemma-3-270m-q4_k_m", "llama", "qwen3"]
    assert (result.status["memory_request"] > 0).all()
    merged = {stem: read_table(tmp_path / "sweep" / f"{stem}.csv", dtype=str) for stem in TABLES}
    for model, name in zip([default_model, tiny_models["llama"], tiny_models["qwen3"]], names):
        layerscope.echo(models=[model], tokens=WORDS, max_new_tokens=2, out=tmp_path / "alone" / name)
        for stem in TABLES:
            alone = read_table(tmp_path / "alone" / name / f"{stem}.csv")
            same_table(read_table(tmp_path / "sweep" / name / f"{stem}.csv"), alone)
            part = merged[stem][merged[stem]["model"] == alone["model"].iloc[0]].reset_index(drop=True)
            same_table(part, alone)
        record = json.loads((tmp_path / "sweep" / name / "run.json").read_text())
        assert record["command"][-2:] == [
            "--out",
            str(tmp_path / "sweep" / name),
        ]  # the driver's path, not the worker's
    page = (tmp_path / "sweep" / "echo.md").read_text()
    assert "| Word | gemma-3-270m-q4_k_m | llama | qwen3 |" in page


def test_killed_sweep_resumes_without_redoing_finished_models(ray_instance, tiny_pair, tmp_path):
    """SIGKILL the sweep's process once a model has finished; the rerun skips it (its files untouched) and runs
    the rest. The killed sweep runs its models one after another in its own process (``--no-ray``: no second
    set of Ray workers to start); the rerun, on Ray, reads what is finished from the directories alone."""
    out = tmp_path / "sweep"
    models = [tiny_pair[0], tiny_pair[1], f"third={tiny_pair[0]}"]
    argv = ["sweep", "echo", *[a for m in models for a in ("--model", m)], "--tokens", "red,blue,John"]
    argv += ["--max-new-tokens", "2", "--out", str(out)]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")]),
        "OMP_NUM_THREADS": "1",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "layerscope", "--quiet", *argv, "--no-ray"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    dirs = [out / "llama", out / "qwen3", out / "third"]

    def one_model_done() -> bool:
        return any((d / "run.json").is_file() for d in dirs)

    signal_when(proc, one_model_done, signal.SIGKILL, what="killed after a model finished", timeout=300)
    assert proc.returncode == -signal.SIGKILL
    done = {d.name: (d / "run.json").stat().st_mtime_ns for d in dirs if (d / "run.json").is_file()}
    assert 1 <= len(done) < len(dirs)  # killed mid-way
    assert main(["--quiet", *argv]) == 0
    status = read_table(out / "sweep.csv").set_index("model")
    assert json.loads((out / "run.json").read_text())["backend"] == "ray (local)"
    for d in dirs:
        assert status.loc[d.name, "status"] == ("skipped" if d.name in done else "ok")
        if d.name in done:
            assert (d / "run.json").stat().st_mtime_ns == done[d.name]
    assert len(read_table(out / "echo.csv")) == len(dirs) * 3 * 2


def test_a_model_that_fails_to_load_leaves_the_others(failing_sweep):
    code, err, out, _ = failing_sweep
    assert code == 2
    lines = [line for line in err if line.startswith("layerscope")]  # the rest is the summary
    assert len(lines) == 1 and lines[0].startswith("layerscope: error: sweep: 1 of 3 models failed: broken (")
    status = read_table(out / "sweep.csv").set_index("model")
    assert list(status["status"]) == ["ok", "failed", "ok"] and "broken" in status.loc["broken", "source"]
    assert status.loc["broken", "reason"] and "\n" not in status.loc["broken", "reason"]
    record = json.loads((out / "llama" / "run.json").read_text())
    assert finished(out / "llama", config_of(record["experiment"], record["config"])) and not (out / "broken").exists()
    assert set(read_table(out / "echo.csv")["model"]) == {"llama", "qwen3"}


def test_models_that_do_not_fit_together_run_one_at_a_time(failing_sweep):
    """Each task asks for 60% of the node's memory: two never run side by side, though there are 2 CPUs."""
    _, _, out, memory = failing_sweep
    status = read_table(out / "sweep.csv")
    assert list(status["memory_request"]) == [memory] * 3
    ran = status[status["status"] == "ok"]
    start = [datetime.fromisoformat(text).timestamp() for text in ran["started"]]
    first, second = sorted((s, s + seconds) for s, seconds in zip(start, ran["seconds"]))
    assert first[1] <= second[0] + 0.05, (first, second)  # the second began after the first ended


def test_the_reachability_check_lets_a_real_cluster_through(ray_instance):
    """``check_reachable`` (TCP, then a gRPC channel) accepts the address of a live Ray instance's GCS."""
    ray_tasks.check_reachable(ray_instance.get_runtime_context().gcs_address)


# ----- without Ray --------------------------------------------------------------------------------------
def test_without_ray_installed_the_models_run_here(tiny_pair, tmp_path, monkeypatch):
    monkeypatch.setattr(ray_tasks, "ray_available", lambda: False)
    result = layerscope.sweep(
        "echo", models=tiny_pair[:1], out=tmp_path / "s", tokens=("red", "blue"), max_new_tokens=1
    )
    assert result.backend == "sequential (Ray is not installed)"
    assert list(result.status["status"]) == ["ok"] and len(result.merged["echo"]) == 2 * 2


def test_every_source_is_checked_before_the_first_model_runs(tiny_model_dirs, tmp_path, capsys):
    """A missing path, and a folder without config.json, last in the list: refused before any model runs."""
    empty = tmp_path / "empty"
    empty.mkdir()
    for bad, says in [(tmp_path / "nope.gguf", "no such model file"), (empty, "has no config.json")]:
        out = tmp_path / f"out-{bad.name}"
        argv = ["sweep", "echo", "--model", str(tiny_model_dirs["llama"]), "--model", str(bad), "--no-ray"]
        assert main(["--quiet", *argv, "--tokens", "a", "--out", str(out)]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and says in err[0] and str(bad) in err[0]
        assert not (out / "llama").exists()
