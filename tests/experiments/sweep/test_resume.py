"""A sweep rerun over hostile run directories, and models whose names clash with the sweep's own files.

Every sweep here runs its models in this process (``--no-ray``) on a tiny model. A finished model's files that
are links (to a file outside), empty, or not regular files make the model unfinished: the rerun runs it again
and merges only what it wrote itself. A model named as one of the sweep's own files gets a folder of its own.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
from pathlib import Path

import pytest
from sweep_tables import read_table

from layerscope.cli import main

ARGS = ("--tokens", "red,blue", "--max-new-tokens", "1", "--no-ray")


def _sweep(models: list[str], out: Path) -> tuple[int, list[str]]:
    argv = ["--quiet", "sweep", "echo", *[a for m in models for a in ("--model", m)], *ARGS, "--out", str(out)]
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = main(argv)
    return code, [line for line in err.getvalue().splitlines() if line.startswith("layerscope")]  # not the summary


@pytest.fixture(scope="module")
def tiny(tiny_model_dirs) -> str:
    return str(tiny_model_dirs["llama"])


@pytest.fixture(scope="module")
def finished_sweep(tiny, tmp_path_factory) -> Path:
    """A finished sweep of one tiny model (``llama/``), copied by each test that edits it."""
    out = tmp_path_factory.mktemp("finished") / "sweep"
    assert _sweep([tiny], out) == (0, [])
    return out


@pytest.fixture
def sweep_copy(finished_sweep, tmp_path) -> Path:
    out = tmp_path / "sweep"
    shutil.copytree(finished_sweep, out, symlinks=True)
    return out


def _outside_echo(sweep: Path, tmp_path: Path) -> Path:
    """A copy of the model's echo table outside the sweep, one word replaced by a marker."""
    outside = tmp_path / "outside.csv"
    outside.write_text((sweep / "llama" / "echo.csv").read_text().replace('"red"', '"SECRET"'))
    assert "SECRET" in outside.read_text()
    return outside


@pytest.mark.parametrize("link", ["symlink", "hardlink"])
def test_a_linked_table_of_a_finished_model_is_not_merged(tiny, sweep_copy, tmp_path, link):
    outside = _outside_echo(sweep_copy, tmp_path)
    before = outside.read_bytes()
    table = sweep_copy / "llama" / "echo.csv"
    table.unlink()
    if link == "symlink":
        table.symlink_to(outside)
    else:
        os.link(outside, table)
    assert _sweep([tiny], sweep_copy) == (0, [])
    assert "SECRET" not in (sweep_copy / "echo.csv").read_text()
    assert read_table(sweep_copy / "sweep.csv")["status"].tolist() == ["ok"]  # run again, not skipped
    assert not table.is_symlink() and table.stat().st_nlink == 1 and "SECRET" not in table.read_text()
    assert outside.read_bytes() == before


def test_a_listed_file_outside_the_run_directory_is_not_finished(tiny, sweep_copy, tmp_path):
    """A ``run.json`` that lists a file by an absolute path or through ``..`` does not make a finished run."""
    import json

    outside = _outside_echo(sweep_copy, tmp_path)
    record_path = sweep_copy / "llama" / "run.json"
    record = json.loads(record_path.read_text())
    for name in (str(outside), "../../outside.csv"):
        record["files"] = [name if f == "echo.csv" else f for f in record["files"]]
        record_path.write_text(json.dumps(record))
        from layerscope.experiments.sweep.config import config_of
        from layerscope.experiments.sweep.plan import finished

        assert not finished(sweep_copy / "llama", config_of("echo", record["config"])), name
        record["files"] = ["echo.csv" if f == name else f for f in record["files"]]


@pytest.mark.parametrize("damage", ["empty", "fifo"])
def test_a_damaged_table_of_a_finished_model_is_run_again(tiny, sweep_copy, damage):
    table = sweep_copy / "llama" / "echo.csv"
    table.unlink()
    if damage == "empty":
        table.write_bytes(b"")
    else:
        os.mkfifo(table)
    assert _sweep([tiny], sweep_copy) == (0, [])
    assert read_table(sweep_copy / "sweep.csv")["status"].tolist() == ["ok"]
    assert len(read_table(sweep_copy / "echo.csv")) == 4 and len(read_table(table)) == 4


def test_a_folder_in_place_of_a_table_fails_that_model_in_one_line(tiny, sweep_copy):
    table = sweep_copy / "llama" / "echo.csv"
    table.unlink()
    table.mkdir()
    code, err = _sweep([tiny], sweep_copy)
    assert code == 2 and len(err) == 1 and err[0].startswith("layerscope: error: sweep: 1 of 1 models failed: llama (")
    assert read_table(sweep_copy / "sweep.csv")["status"].tolist() == ["failed"]


def test_a_model_folder_that_is_a_link_is_not_written_through(tiny, sweep_copy, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    shutil.move(sweep_copy / "llama", elsewhere)
    (elsewhere / "run.json").unlink()  # unfinished there: a rerun would write into it
    before = sorted(p.name for p in elsewhere.iterdir())
    (sweep_copy / "llama").symlink_to(elsewhere, target_is_directory=True)
    code, err = _sweep([tiny], sweep_copy)
    assert code == 2 and len(err) == 1 and "is a link" in err[0]
    assert sorted(p.name for p in elsewhere.iterdir()) == before


def test_a_finished_table_that_cannot_be_read_back_is_run_again(tiny, sweep_copy):
    """A regular, non-empty file that is no CSV table (a quote never closed) is run again too."""
    (sweep_copy / "llama" / "echo.csv").write_text('model,word\n"llama,red\n')
    assert _sweep([tiny], sweep_copy) == (0, [])
    assert read_table(sweep_copy / "sweep.csv")["status"].tolist() == ["ok"]
    assert len(read_table(sweep_copy / "echo.csv")) == 4


def test_models_named_as_the_sweeps_own_files(tiny, tmp_path):
    names = ["run.json", "echo.csv", "sweep.csv", "echo.md", "sweep.HTML"]
    out = tmp_path / "sweep"
    code, err = _sweep([f"{name}={tiny}" for name in names], out)
    assert (code, err) == (0, [])
    status = read_table(out / "sweep.csv")
    assert status["model"].tolist() == names and status["status"].tolist() == ["ok"] * len(names)
    folders = status["run_dir"].tolist()
    assert len(set(folders)) == len(names)
    for folder in folders:
        assert "/" not in folder and not folder.startswith(".") and (out / folder / "run.json").is_file()
    for own in ("run.json", "echo.csv", "sweep.csv", "echo.md"):
        assert (out / own).is_file()
    assert sorted(set(read_table(out / "echo.csv")["model"])) == sorted(names)
    assert _sweep([f"{name}={tiny}" for name in names], out) == (0, [])  # the rerun skips every one
    assert read_table(out / "sweep.csv")["status"].tolist() == ["skipped"] * len(names)


def test_a_killed_sweeps_work_folder_is_removed_by_the_rerun(tiny, sweep_copy):
    """What Ray tasks killed with their sweep left in its work folder (see ``ray_tasks.WorkRoot``) is gone after
    a rerun, even one with nothing left to run."""
    from layerscope.experiments.sweep.ray_tasks import WORK_FOLDER

    left = sweep_copy / WORK_FOLDER / "layerscope-sweep-x1" / "run"
    left.mkdir(parents=True)
    (left / ".echo.csv.abc.part").write_text("half")
    assert _sweep([tiny], sweep_copy) == (0, [])
    assert not (sweep_copy / WORK_FOLDER).exists()
