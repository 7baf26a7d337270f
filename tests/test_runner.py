"""The runner and the run directory, driven by a minimal experiment written as a user would write one."""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest

from layerscope.errors import LayerscopeError
from layerscope.experiment import ExperimentConfig, Result, option
from layerscope.model_spec import ModelSpec
from layerscope.models.loading import given_or_loaded
from layerscope.rundir import RunDir, model_record
from layerscope.runner import execute


# ----- a minimal experiment: the norm of each row of the input embedding for a few words -----------
@dataclass(frozen=True, kw_only=True)
class NormsConfig(ExperimentConfig):
    experiment = "norms"
    model: ModelSpec = option(ModelSpec(), flag="--model")
    words: tuple[str, ...] = option(("red", "green"), flag="--word")

    def validate(self) -> None:
        super().validate()
        if not self.words:
            raise self.error("words", self.words, "is empty; give at least one word")

    def run(self, model=None) -> NormsResult:
        timings: dict[str, float] = {}
        model = given_or_loaded(self.model, model, timings)
        ids = [model.tokenizer(w, add_special_tokens=False)["input_ids"][0] for w in self.words]
        rows = model.embedding_matrix[ids].detach().float().numpy()
        table = pd.DataFrame({"word": self.words, "norm": np.linalg.norm(rows, axis=1)})
        return NormsResult(config=self, table=table, rows=rows, models=[model_record(model)], timings=timings)


@dataclass(kw_only=True, repr=False)
class NormsResult(Result):
    main_file = "norms.csv"
    table: pd.DataFrame
    rows: np.ndarray

    def tables(self):
        return {"norms": self.table}

    def arrays(self):
        return {"rows": self.rows}

    def summary(self):
        return [f"mean norm {self.table['norm'].mean():.3f}"]


# ------------------------------------------------------------------------------------------------------
def test_execute_loads_once_runs_and_writes(tiny_model_dirs, tmp_path):
    spec = ModelSpec(source=str(tiny_model_dirs["llama"]))
    result = execute(NormsConfig(model=spec), out=tmp_path / "run")
    assert result.timings["load"] > 0
    written = pd.read_csv(tmp_path / "run" / "norms.csv")
    # plain pandas reads text into pyarrow strings where pyarrow is installed; layerscope keeps Python strings
    pd.testing.assert_frame_equal(written, result.table, check_dtype=False, check_column_type=False)
    np.testing.assert_array_equal(np.load(tmp_path / "run" / "rows.npy"), result.rows)
    record = json.loads((tmp_path / "run" / "run.json").read_text())
    assert record["command"] == ["layerscope", "norms", "--model", spec.source, "--out", str(tmp_path / "run")]
    assert record["models"][0]["fingerprint"] == result.models[0]["fingerprint"]
    assert set(record["timings_s"]) == {"load", "write"}


def test_a_given_model_is_not_loaded_again(tiny_models):
    model = tiny_models["qwen3"]
    result = execute(NormsConfig(model=ModelSpec.of(model)), model)
    assert "load" not in result.timings
    expected = np.linalg.norm(
        model.embedding_matrix.detach().numpy()[
            [model.tokenizer(w, add_special_tokens=False)["input_ids"][0] for w in ("red", "green")]
        ],
        axis=1,
    )
    np.testing.assert_allclose(result.table["norm"], expected, rtol=1e-6)


def test_bad_config_fails_before_loading(tmp_path):
    with pytest.raises(LayerscopeError, match=r"^words=\(\) is empty"):
        execute(NormsConfig(words=(), model=ModelSpec(source=str(tmp_path / "missing"))))
    with pytest.raises(LayerscopeError, match=r"^--word '' is empty"):
        execute(NormsConfig(words=(), model=ModelSpec(source=str(tmp_path / "missing"))), via="cli")


def test_a_directory_of_another_experiment_is_refused(tiny_models, tmp_path):
    model = tiny_models["gemma3"]
    out = execute(NormsConfig(model=ModelSpec.of(model)), model, out=tmp_path / "run")
    assert out is not None
    record = json.loads((tmp_path / "run" / "run.json").read_text())
    record["experiment"] = "layers"
    (tmp_path / "run" / "run.json").write_text(json.dumps(record))
    with pytest.raises(LayerscopeError, match="holds a 'layers' run"):
        execute(NormsConfig(model=ModelSpec.of(model)), model, out=tmp_path / "run")


def test_an_interrupted_write_leaves_no_half_file(tiny_models, tmp_path, monkeypatch):
    model = tiny_models["olmo3"]
    result = execute(NormsConfig(model=ModelSpec.of(model)), model)

    def fail(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "save", fail)
    with pytest.raises(KeyboardInterrupt):
        RunDir(tmp_path / "run").write(result)
    names = sorted(p.name for p in (tmp_path / "run").iterdir())
    assert names == [".layerscope-run", "norms.csv"]  # finished files only; no run.json, no temporary
    assert json.loads((tmp_path / "run" / ".layerscope-run").read_text()) == {"experiment": "norms"}


@dataclass(kw_only=True, repr=False)
class _Fewer(NormsResult):
    def arrays(self):
        return {}


def test_a_rerun_removes_what_the_old_run_wrote_and_this_one_did_not(tiny_models, tmp_path):
    model = tiny_models["llama"]
    result = execute(NormsConfig(model=ModelSpec.of(model)), model, out=tmp_path / "run")
    assert (tmp_path / "run" / "rows.npy").is_file()
    (tmp_path / "run" / "notes.txt").write_text("mine")  # not the run's: kept
    fewer = _Fewer(config=result.config, table=result.table, rows=result.rows, models=result.models)
    RunDir(tmp_path / "run").write(fewer)
    names = sorted(p.name for p in (tmp_path / "run").iterdir())
    assert names == ["norms.csv", "notes.txt", "run.json"]
    assert json.loads((tmp_path / "run" / "run.json").read_text())["files"] == ["norms.csv"]


def test_timings_add_the_load_done_here_to_the_run_s_own():
    from layerscope.experiment import Result as BaseResult

    @dataclass(frozen=True, kw_only=True)
    class Loads(ExperimentConfig):
        experiment = "loads"

        def run(self, model=None):
            return BaseResult(config=self, timings={"load": 2.0})

    assert execute(Loads()).timings["load"] == 2.0
