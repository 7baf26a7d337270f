"""``ray_tasks``: the function a Ray worker runs, called here without Ray: a run directory back as bytes."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from layerscope.errors import LayerscopeError
from layerscope.experiments.echo import EchoConfig
from layerscope.experiments.sweep.config import plain
from layerscope.experiments.sweep.ray_tasks import (
    WORK_FOLDER,
    WorkRoot,
    check_reachable,
    one_line,
    ray_endpoint,
    run_model_task,
)
from layerscope.model_spec import ModelSpec

SRC = str(Path(__file__).resolve().parents[3] / "src")


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


# ----- --ray-address: refused in one line when nothing (or no Ray) answers there ---------------------------
@pytest.fixture
def closed_port() -> int:
    """A loopback port nothing listens on (bound once, then closed)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def silent_port():
    """A loopback port that accepts connections and never answers."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        yield server.getsockname()[1]


def test_an_address_where_nothing_listens_is_refused_at_once(closed_port):
    for address in (f"127.0.0.1:{closed_port}", f"ray://127.0.0.1:{closed_port}", "127.0.0.1:1"):
        start = time.monotonic()
        with pytest.raises(LayerscopeError, match=r"nothing accepts connections .*Connection refused") as caught:
            check_reachable(address)
        assert time.monotonic() - start < 2 and "\n" not in str(caught.value)


def test_an_unknown_host_is_refused_at_once():
    start = time.monotonic()
    with pytest.raises(LayerscopeError, match="'no-such-head.invalid'"):
        check_reachable("no-such-head.invalid:6379", timeout=3)
    assert time.monotonic() - start < 4


def test_a_port_that_does_not_speak_grpc_is_refused_within_the_timeout(silent_port):
    start = time.monotonic()
    with pytest.raises(LayerscopeError, match="does not answer as Ray does"):
        check_reachable(f"127.0.0.1:{silent_port}", timeout=0.5)
    assert time.monotonic() - start < 3


@pytest.mark.parametrize("address", ["127.0.0.1", "http://127.0.0.1:1", "127.0.0.1:99999", "ray://", ":6379"])
def test_an_address_that_is_not_host_and_port_is_one_line(address):
    with pytest.raises(LayerscopeError, match="--ray-address") as caught:
        check_reachable(address)
    assert "\n" not in str(caught.value)
    assert ray_endpoint("auto") is None and ray_endpoint("ray://[::1]:10001") == ("::1", 10001)


def test_the_sweep_command_refuses_a_dead_address_in_one_line(tiny_model_dirs, closed_port, tmp_path):
    """Exit 2, one line, in seconds (Ray itself retries for about 14 minutes), and no directory left behind."""
    pytest.importorskip("ray")
    out = tmp_path / "sweep"
    argv = ["sweep", "echo", "--model", str(tiny_model_dirs["llama"]), "--tokens", "red", "--max-new-tokens", "1"]
    argv += ["--ray-address", f"127.0.0.1:{closed_port}", "--out", str(out)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([SRC, os.environ.get("PYTHONPATH", "")]), "OMP_NUM_THREADS": "1"}
    start = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "layerscope", "--quiet", *argv], capture_output=True, text=True, env=env, timeout=90
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.splitlines() == [
        f"layerscope: error: --ray-address '127.0.0.1:{closed_port}': nothing accepts connections at "
        f"127.0.0.1:{closed_port} (Connection refused); is the Ray cluster up (`ray start --head` prints its address)?"
    ]
    assert time.monotonic() - start < 30 and not out.exists()


# ----- where a task writes, and the write-back ----------------------------------------------------------------
@pytest.fixture
def system_temp(tmp_path, monkeypatch) -> Path:
    """The system's temporary directory, an empty one of this test's (to see what a task leaves there)."""
    path = tmp_path / "system-temp"
    path.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(path))
    return path


def _echo_record(tiny_model_dirs) -> dict:
    config = EchoConfig(models=(ModelSpec(str(tiny_model_dirs["llama"])),), tokens=("red",), max_new_tokens=1)
    return plain(config.to_record())


def test_a_task_writes_inside_the_sweeps_work_folder(tiny_model_dirs, tmp_path, system_temp, monkeypatch):
    """The task's run is made in the sweep's own hidden ``.part`` work folder (which a rerun's claim of the
    sweep's directory removes if a kill left anything there), nothing in the system's temporary directory; a
    worker that does not see the folder (another machine) uses the system's, and removes it too."""
    from layerscope import runner

    sweep = tmp_path / "sweep"
    sweep.mkdir()
    work = WorkRoot.create(sweep)
    assert Path(work.path) == sweep / WORK_FOLDER and WORK_FOLDER.startswith(".") and WORK_FOLDER.endswith(".part")
    seen = []
    real = runner.execute

    def execute(config, *args, out=None, **kwargs):
        seen.append((Path(out), sorted(p.name for p in system_temp.iterdir())))
        return real(config, *args, out=out, **kwargs)

    monkeypatch.setattr(runner, "execute", execute)
    payload = run_model_task("echo", _echo_record(tiny_model_dirs), work)
    assert payload["status"] == "ok", payload
    assert seen[0][0].is_relative_to(Path(work.path)) and seen[0][1] == []
    assert sorted(p.name for p in Path(work.path).iterdir()) == ["token"]  # the task's folder is gone

    elsewhere = WorkRoot(work.path, token="another machine's")
    assert elsewhere.here() is None
    payload = run_model_task("echo", _echo_record(tiny_model_dirs), elsewhere)
    assert payload["status"] == "ok" and seen[1][0].is_relative_to(system_temp)
    assert list(system_temp.iterdir()) == []
    work.remove()
    assert not Path(work.path).exists()


def test_the_write_back_holds_the_model_folders_lock(tiny_model_dirs, tmp_path):
    """A folder another live run holds is refused in one line and left as it was; otherwise the run is written
    and the lock given back."""
    import fcntl

    from layerscope.experiments.sweep import SweepConfig
    from layerscope.experiments.sweep.plan import finished, plan
    from layerscope.experiments.sweep.run import write_back
    from layerscope.rundir import LOCK

    spec = ModelSpec(str(tiny_model_dirs["llama"]))
    config = SweepConfig(base=EchoConfig(tokens=("red",), max_new_tokens=1), models=(spec,), memory_per_model="1GB")
    (job,) = plan(config, tmp_path / "sweep")
    payload = run_model_task(job.config.experiment, job.record)
    job.run_dir.mkdir(parents=True)
    with open(job.run_dir / LOCK, "w") as held:  # another process's lock, as RunDir.lock takes it
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(LayerscopeError, match="is in use by another run") as caught:
            write_back(job, payload)
        assert "\n" not in str(caught.value)
        assert sorted(p.name for p in job.run_dir.iterdir()) == [LOCK]
    (job.run_dir / LOCK).unlink()
    write_back(job, payload)
    assert finished(job.run_dir, job.config) and not (job.run_dir / LOCK).exists()
