"""Run directories: which existing ``--out`` directories are refused, and what ``force`` replaces (and never touches)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

import pandas as pd
import pytest

from layerscope.errors import LayerscopeError
from layerscope.experiment import ExperimentConfig, Result, option
from layerscope.rundir import UNFINISHED, RunDir
from layerscope.runner import execute


@dataclass(frozen=True, kw_only=True)
class WordsConfig(ExperimentConfig):
    """A model-free experiment: a table of the words given."""

    experiment = "words"
    words: tuple[str, ...] = option(("a", "b"), flag="--word")

    def run(self, model=None) -> WordsResult:
        return WordsResult(config=self, table=pd.DataFrame({"word": list(self.words)}))


@dataclass(kw_only=True, repr=False)
class WordsResult(Result):
    table: pd.DataFrame
    main_file = "words.csv"

    def tables(self):
        return {"words": self.table}


@dataclass(frozen=True, kw_only=True)
class OtherConfig(WordsConfig):
    experiment = "other"


def _names(path) -> list[str]:
    return sorted(os.listdir(path))


def test_a_fresh_directory_gets_the_run_and_no_mark(tmp_path):
    out = tmp_path / "run"
    execute(WordsConfig(), out=out)
    assert _names(out) == ["run.json", "words.csv"]
    execute(WordsConfig(words=("c",)), out=out)  # a rerun of the same experiment replaces it
    assert pd.read_csv(out / "words.csv")["word"].tolist() == ["c"]


def test_an_empty_existing_directory_is_used(tmp_path):
    (tmp_path / "run").mkdir()
    execute(WordsConfig(), out=tmp_path / "run")
    assert (tmp_path / "run" / "run.json").is_file()


def test_unrelated_files_are_refused_naming_the_directory(tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "thesis.tex").write_text("precious")
    with pytest.raises(LayerscopeError) as info:
        execute(WordsConfig(), out=out)
    message = str(info.value)
    assert str(out) in message and "'thesis.tex'" in message and "--force" in message and "\n" not in message
    assert _names(out) == ["thesis.tex"]  # untouched
    with pytest.raises(LayerscopeError, match="thesis.tex"):
        WordsConfig().run().save(out)


def test_another_experiments_run_is_refused(tmp_path):
    out = tmp_path / "run"
    execute(OtherConfig(), out=out)
    with pytest.raises(LayerscopeError, match=r"holds a 'other' run; give a new directory for this 'words' run"):
        execute(WordsConfig(), out=out)


def test_hidden_temporaries_and_an_ablation_parts_store_are_not_unrelated(tmp_path):
    out = tmp_path / "run"
    (out / "parts").mkdir(parents=True)
    (out / ".words.csv.abc.part").write_text("")
    assert RunDir(out).unrelated_files("ablate") == []
    assert RunDir(out).unrelated_files("words") == ["parts"]  # not an ablation: its parts mean nothing here


def test_an_interrupted_run_is_resumed_by_the_same_experiment_only(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / UNFINISHED).write_text(json.dumps({"experiment": "words"}))
    (out / "words.csv").write_text("half of an old run\n")
    with pytest.raises(LayerscopeError, match="holds a 'words' run"):
        execute(OtherConfig(), out=out)
    execute(WordsConfig(), out=out)
    assert _names(out) == ["run.json", "words.csv"]  # the mark is gone once run.json is there


def test_a_failed_run_leaves_no_directory_behind(tmp_path):
    @dataclass(frozen=True, kw_only=True)
    class Failing(WordsConfig):
        def run(self, model=None):
            raise LayerscopeError("no")

    with pytest.raises(LayerscopeError):
        execute(Failing(), out=tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_force_replaces_unrelated_files_and_another_run(tmp_path):
    out = tmp_path / "run"
    (out / "deep" / "er").mkdir(parents=True)
    (out / "deep" / "er" / "x.txt").write_text("x")
    (out / "notes.txt").write_text("n")
    execute(WordsConfig(), out=out, force=True)
    assert _names(out) == ["run.json", "words.csv"]
    execute(OtherConfig(), out=out, force=True)
    assert json.loads((out / "run.json").read_text())["experiment"] == "other"
    WordsConfig(words=("z",)).run().save(out, force=True)
    assert json.loads((out / "run.json").read_text())["experiment"] == "words"


def test_force_never_deletes_outside_the_directory(tmp_path):
    outside = tmp_path / "outside"
    (outside / "sub").mkdir(parents=True)
    (outside / "keep.txt").write_text("keep")
    (outside / "sub" / "keep2.txt").write_text("keep")
    out = tmp_path / "run"
    out.mkdir()
    (out / "link-to-dir").symlink_to(outside, target_is_directory=True)
    (out / "link-to-file").symlink_to(outside / "keep.txt")
    execute(WordsConfig(), out=out, force=True)
    assert _names(out) == ["run.json", "words.csv"]
    assert (outside / "keep.txt").read_text() == "keep" and (outside / "sub" / "keep2.txt").read_text() == "keep"

    linked = tmp_path / "linked-out"  # --out itself a link: the link is replaced, its target left alone
    linked.symlink_to(outside, target_is_directory=True)
    execute(WordsConfig(), out=linked, force=True)
    assert not linked.is_symlink() and _names(linked) == ["run.json", "words.csv"]
    assert _names(outside) == ["keep.txt", "sub"]


def test_force_refuses_a_file(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(LayerscopeError, match="is a file"):
        execute(WordsConfig(), out=tmp_path / "file", force=True)
    assert (tmp_path / "file").read_text() == "x"


def test_write_files_refuses_names_outside_and_moves_paths(tmp_path):
    record = {"experiment": "echo", "command": ["layerscope", "echo", "--out", "/tmp/w/run"], "files": ["a.csv"]}
    files = {"a.csv": b"x\n1\n", "run.json": json.dumps(record).encode()}
    RunDir(tmp_path / "m").write_files(files, "echo", moved_from="/tmp/w/run")
    written = json.loads((tmp_path / "m" / "run.json").read_text())
    assert written["command"][-1] == str(tmp_path / "m") and (tmp_path / "m" / "a.csv").read_bytes() == b"x\n1\n"
    for name in ("../evil.csv", "/etc/evil"):
        with pytest.raises(LayerscopeError, match="outside"):
            RunDir(tmp_path / "n").write_files({name: b"", "run.json": json.dumps(record).encode()}, "echo")
    assert not (tmp_path / "evil.csv").exists()


def test_an_out_that_leads_elsewhere_is_refused_before_anything_is_made(tmp_path):
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "keep.txt").write_text("keep")
    with pytest.raises(LayerscopeError, match=r"goes up \('\.\.'\) out of .*nosuch', which does not exist"):
        execute(WordsConfig(), out=tmp_path / "nosuch" / ".." / "victim", force=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["victim"] and _names(victim) == ["keep.txt"]
    (tmp_path / "link").symlink_to(victim, target_is_directory=True)
    with pytest.raises(LayerscopeError, match="is a symbolic link; give a directory, or --force"):
        execute(WordsConfig(), out=tmp_path / "link")
    assert _names(victim) == ["keep.txt"]
    with pytest.raises(LayerscopeError, match="names the home of an unknown user"):
        execute(WordsConfig(), out="~no-such-user-here/run")


def test_a_link_inside_a_run_directory_being_written_is_never_followed(tmp_path):
    outer, victim = RunDir(tmp_path / "tour"), tmp_path / "victim"
    victim.mkdir()
    outer.claim("tour")
    try:
        (outer.path / "step").symlink_to(victim, target_is_directory=True)
        with pytest.raises(LayerscopeError, match="is a symbolic link inside the run directory"):
            execute(WordsConfig(), out=outer.path / "step" / "run", force=True)
    finally:
        outer.unlock()
    assert not list(victim.iterdir())
