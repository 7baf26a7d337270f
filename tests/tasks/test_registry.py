"""The baselines ``layerscope tasks`` states, rechecked on the default model (the two quickest tasks)."""

from __future__ import annotations

import pytest

from layerscope.experiments.ablate import AblateConfig, run_ablate
from layerscope.tasks.registry import BASELINES, TASKS


def test_every_task_has_a_baseline_well_above_chance():
    assert set(BASELINES) == set(TASKS)
    for name, base in BASELINES.items():
        assert base.chance == pytest.approx(TASKS[name].task().chance, abs=1e-4), name
        assert base.accuracy >= 0.15 + base.chance and base.n == len(TASKS[name].task()), name


@pytest.mark.default_model
@pytest.mark.parametrize("name", ["capitals", "antonyms"])
def test_stated_baseline_on_the_default_model(default_model, name):
    result = run_ablate(AblateConfig(task=name, drop=("0",)), default_model)
    base = result.accuracy.iloc[0]
    assert base["config"] == "baseline" and result.scoring == BASELINES[name].scoring
    # One flipped item at most (batching order can move a near tie).
    assert base["accuracy"] == pytest.approx(BASELINES[name].accuracy, abs=1.5 / base["n"])


def test_builtin_tasks_table_is_what_the_command_prints(capsys):
    import json

    import layerscope
    from layerscope.cli import main

    table = layerscope.builtin_tasks()
    assert main(["tasks", "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert list(table.index) == [row["name"] for row in printed] == list(TASKS)
    for row in printed:
        got = table.loc[row["name"]]
        assert {key: got[key] for key in row if key != "name"} == {k: v for k, v in row.items() if k != "name"}
    assert (table["baseline"] > table["chance"]).all()
