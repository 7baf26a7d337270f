"""The tour: a list of experiment configs, run on one loaded model, each step reproducible from its command."""

from __future__ import annotations

import json
import shlex

import pytest

from layerscope.cli.main import main
from layerscope.experiments.tour import TourConfig, tour_steps
from layerscope.model_spec import ModelSpec


def test_every_step_is_a_valid_config_on_the_given_model():
    spec = ModelSpec("some/model", dtype="bfloat16")
    steps = tour_steps(spec, quick=True)
    assert [s.name for s in steps] == ["tokens", "layers", "inspect", "ablate", "patch", "echo", "layout"]
    assert [s.name for s in tour_steps(spec, out="t")][-1] == "compare"  # the full tour only
    for step in steps:
        step.config.validate()
        command = step.config.command()
        assert command[:2] == ["layerscope", step.config.experiment]
        if step.name != "layout":
            assert "some/model" in command and "bfloat16" in command


@pytest.fixture
def tiny_tour(tiny_quick_tour):
    """The session's quick tour of the tiny llama (``tests/conftest.py``)."""
    return tiny_quick_tour


def test_quick_tour_writes_each_step_and_a_report(tiny_tour):
    result, out = tiny_tour
    assert not result.failed, result.steps
    assert result.report == out / "report.html" and result.report.is_file()
    record = json.loads((out / "run.json").read_text())
    assert record["experiment"] == "tour" and set(record["steps"]) == {s.name for s in result.config.steps(3)}
    # patch's section, on the names pair, with its heatmap and the sentence under it
    page = result.report.read_text()
    section = page[page.index('data-experiment="patch"') :]
    section = section[: section.index("</section>")]
    assert 'data-figure="patch_resid"' in section and 'class="figure"' in section, section[:500]
    assert "gives back" in section


def test_each_step_records_the_command_that_reproduces_it(tiny_tour, tmp_path, capsys):
    result, out = tiny_tour
    step = next(s for s in result.config.steps(3) if s.name == "tokens")
    record = json.loads((out / "tokens" / "run.json").read_text())
    assert record["command"] == [*step.config.command(), "--out", str(out / "tokens")]
    # rerun from the recorded command into a new directory: the same table
    argv = shlex.split(shlex.join(record["command"][1:-2])) + ["--out", str(tmp_path / "again")]
    assert main(["--quiet", *argv]) == 0
    assert (tmp_path / "again" / "projection.csv").read_text() == (out / "tokens" / "projection.csv").read_text()


def test_tour_config_round_trips_through_its_command():
    config = TourConfig(model=ModelSpec("m.gguf"), quick=True)
    assert config.command() == ["layerscope", "tour", "--model", "m.gguf", "--quick"]


def test_the_full_tours_compare_step_measures_the_requantizations(tiny_model_dirs, tmp_path):
    """The step's prepare writes the MLX 8- and 4-bit copies under out/quantized; compare reads them."""
    from layerscope.runner import execute

    spec = ModelSpec(str(tiny_model_dirs["llama"]))
    step = tour_steps(spec, out=tmp_path)[-1]
    step.prepare()
    assert {p.name for p in (tmp_path / "quantized").iterdir()} == {"mlx-8bit", "mlx-4bit"}
    result = execute(step.config, out=tmp_path / "compare")
    assert list(result.agreement["model"]) == ["mlx-8bit", "mlx-4bit"]
    assert result.closer_everywhere() == ("mlx-8bit", "mlx-4bit")
    assert len(result.weights) and (tmp_path / "compare" / "agreement.html").is_file()
    step.prepare()  # a rerun of the tour replaces the copies
