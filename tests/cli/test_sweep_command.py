"""``layerscope sweep`` on the command line: the experiment's own options, the sweep's, bad input as one line."""

from __future__ import annotations

import pytest

from layerscope.cli import main
from layerscope.errors import LayerscopeError
from layerscope.experiments.echo import EchoConfig
from layerscope.experiments.sweep import SweepConfig
from layerscope.registry import ENTRIES


@pytest.fixture(scope="module")
def tiny(tiny_model_dirs) -> str:
    return str(tiny_model_dirs["llama"])


def test_help_has_the_experiments_options_and_the_sweeps(capsys):
    assert main(["sweep", "ablate", "--help"]) == 0
    text = capsys.readouterr().out
    for flag in ("--drop", "--scoring", "--model", "--ray-address", "--no-ray", "--num-cpus", "--memory-per-model"):
        assert flag in text
    assert main(["sweep"]) == 2
    assert (
        capsys.readouterr().err.strip()
        == "layerscope sweep: give an experiment: tokens, layers, inspect, ablate, echo, encode, similar, stages"
    )


def test_the_command_line_sweeps_what_python_sweeps_but_capture():
    """Every experiment ``layerscope.sweep`` takes has ``layerscope sweep NAME``, but ``capture`` (``residuals``),
    which has no command of its own."""
    from layerscope.registry import swept

    python = [e.name for e in swept("python")]
    assert [e.name for e in swept("cli")] == [name for name in python if name != "capture"]
    assert "capture" in python and not ENTRIES["capture"].command


def test_a_sweep_names_the_default_embedder_as_its_own(tmp_path):
    """``--model default`` of a sentence-embedding sweep is all-MiniLM, not the default causal LM."""
    from layerscope.experiments.encode import EncodeConfig
    from layerscope.experiments.sweep.plan import plan
    from layerscope.model_spec import ModelSpec
    from layerscope.models.embedding import DEFAULT_EMBEDDER

    config = SweepConfig(base=EncodeConfig(texts=("a", "b")), models=(ModelSpec(), ModelSpec(name="two")))
    assert [job.name for job in plan(config, tmp_path)] == [DEFAULT_EMBEDDER, "two"]


def test_the_command_is_rebuilt_from_the_config(tiny):
    from layerscope.cli.declared import parse

    argv = ["sweep", "ablate", "--model", tiny, "--model", f"b={tiny}", "--n", "5", "--ops", "+", "--no-ray"]
    config = parse(argv)
    assert config.command() == ["layerscope", *argv]
    assert [m.value for m in config.models] == [tiny, f"b={tiny}"] and config.base.n == 5


def test_bad_options_are_one_line(tiny, tmp_path, capsys):
    assert main(["sweep", "echo", "--model", tiny, "--top-k", "0", "--out", str(tmp_path / "a")]) == 2
    assert capsys.readouterr().err.strip().splitlines() == ["layerscope: error: --top-k 0 must be at least 1"]
    assert main(["sweep", "tour", "--out", str(tmp_path / "b")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "invalid choice: 'tour'" in err[0]
    assert main(["sweep", "layers", "--model", tiny, "--dims", "4", "--out", str(tmp_path / "c")]) == 2
    assert capsys.readouterr().err.strip() == "layerscope: error: --dims 4 is not supported; valid: 2, 3"
    with pytest.raises(LayerscopeError, match="memory_per_model"):
        SweepConfig(base=EchoConfig(), memory_per_model="lots").validate()
