"""``plan``: a job per model (unique names and folders, no model loaded), and which run directories are finished."""

from __future__ import annotations

import json
from pathlib import Path

from layerscope.experiments.echo import EchoConfig
from layerscope.experiments.sweep import SweepConfig
from layerscope.experiments.sweep.plan import directory_for, finished, plan, planned_name
from layerscope.model_spec import ModelSpec


def test_names_without_loading_a_model(tiny_model_dirs):
    assert planned_name(ModelSpec()) == "gemma-3-270m-q4_k_m"
    assert planned_name(ModelSpec(str(tiny_model_dirs["llama"]))) == "llama"
    assert planned_name(ModelSpec("x", name="mine")) == "mine"
    assert planned_name(ModelSpec("org/some-model")) == "some-model"
    assert directory_for("a/b\\c:d") == "a_b_c_d" and directory_for(".hidden") == "_hidden"


def test_a_name_given_twice_gets_its_own_name_and_folder(tmp_path):
    models = (ModelSpec(), ModelSpec("path/to/qwen3", name="a/b"), ModelSpec(name="a/b"))
    jobs = plan(SweepConfig(base=EchoConfig(max_new_tokens=1), models=models, memory_per_model="2GB"), tmp_path)
    assert [(job.name, job.run_dir) for job in jobs] == [
        ("gemma-3-270m-q4_k_m", tmp_path / "gemma-3-270m-q4_k_m"),
        ("a/b", tmp_path / "a_b"),
        ("a/b (2)", tmp_path / "a_b (2)"),
    ]
    assert [job.memory for job in jobs] == [2_000_000_000] * 3
    third = jobs[2].config  # the experiment's config for that model alone, its run directory set
    assert third.models == (ModelSpec(name="a/b (2)"),) and third.max_new_tokens == 1
    assert getattr(third, "resume_dir", str(tmp_path / "a_b (2)")) == str(tmp_path / "a_b (2)")


def test_finished_needs_the_same_config_and_every_listed_file(tmp_path):
    config = EchoConfig(tokens=("red",))
    assert not finished(tmp_path, config)
    record = {"experiment": "echo", "config": json.loads(json.dumps(config.to_record())), "files": ["echo.csv"]}
    (tmp_path / "run.json").write_text(json.dumps(record))
    assert not finished(tmp_path, config)  # echo.csv is missing
    (tmp_path / "echo.csv").write_text("model\n")
    assert finished(tmp_path, config)
    assert not finished(tmp_path, EchoConfig(tokens=("blue",)))
    assert not finished(Path(tmp_path / "nothing"), config)


def test_folders_never_take_the_place_of_the_sweeps_files(tiny_model_dirs, tmp_path):
    """Names from a directory's ``_name_or_path`` (as from a GGUF's ``general.name``) that are the sweep's own
    file names, dot names, path separators or control characters get a folder of their own, inside ``out``."""
    import shutil

    names = ["run.json", "sweep.csv", "..", ".", "a/../../b", "x\n\x1b[31m", ".layerscope-lock", "e" * 300]
    specs = []
    for i, name in enumerate(names):
        directory = shutil.copytree(tiny_model_dirs["llama"], tmp_path / "models" / str(i))
        config = json.loads((directory / "config.json").read_text())
        (directory / "config.json").write_text(json.dumps({**config, "_name_or_path": name}))
        specs.append(ModelSpec(str(directory)))
    jobs = plan(SweepConfig(base=EchoConfig(), models=tuple(specs), memory_per_model="1GB"), tmp_path / "s")
    folders = [job.run_dir.name for job in jobs]
    assert len(set(folders)) == len(names)
    for job in jobs:
        assert job.run_dir.parent == tmp_path / "s" and job.run_dir.name not in ("run.json", "sweep.csv", ".", "..")
        assert not job.run_dir.name.startswith(".") and job.run_dir.name.isprintable()
        assert len(job.run_dir.name.encode()) < 255
    assert directory_for("run.json") == "run_json" and directory_for("Qwen2.5-0.5B") == "Qwen2.5-0.5B"
