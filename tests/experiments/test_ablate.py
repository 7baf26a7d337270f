"""The ablate experiment and command: outputs, resume after an interruption, bad input."""

from __future__ import annotations

import json
from dataclasses import replace

import pandas as pd
import pytest
from matplotlib.figure import Figure

import layerscope
from layerscope.capture.ablation import encode_task
from layerscope.checkpoints.layout import model_depth
from layerscope.cli import main
from layerscope.cli.declared import parse
from layerscope.errors import LayerscopeError
from layerscope.experiment import ConfigError
from layerscope.experiments.ablate import AblateConfig, parse_drop, run_ablate
from layerscope.model_spec import ModelSpec

FINAL_FILES = ("accuracy.csv", "examples.csv")


def run_and_save(config, model, out, on_config=None):
    """What ``ablate(out=...)`` does, with a hook after each configuration."""
    result = run_ablate(replace(config, resume_dir=str(out)), model, on_config=on_config)
    result.save(out)
    return result


def test_outputs_are_consistent(tiny_models, tmp_path):
    model = tiny_models["llama"]
    result = layerscope.ablate("arithmetic", model=model, n=30, drop=["1", "0,2"], out=tmp_path)
    for name in (*FINAL_FILES, "accuracy.html", "accuracy.png", "run.json"):
        assert (tmp_path / name).stat().st_size > 0
    table = pd.read_csv(tmp_path / "accuracy.csv")
    assert table["config"].tolist() == ["baseline", "drop 1", "drop 0,2"]
    examples = result.examples
    assert len(examples) == 3 * 30
    # Each row's verdict is the first answer token against the decoded prediction.
    encoded = encode_task(model, list(examples["prompt"][:30]), list(examples["answer"][:30]))
    for config, group in examples.groupby("config"):
        want = [model.decode(ids[:1]) for ids in encoded.answer_ids]
        assert list(group["correct"]) == [p == w for p, w in zip(group["prediction"], want)]
        row = table[table["config"] == config].iloc[0]
        assert row["accuracy"] == pytest.approx(group["correct"].mean())
        for op in "+-*/":
            in_op = group[group["group"] == op]
            assert row[f"accuracy[{op}]"] == pytest.approx(in_op["correct"].mean())
    base = table.loc[0, "accuracy"]
    assert table["delta"].tolist() == pytest.approx([a - base for a in table["accuracy"]])
    record = json.loads((tmp_path / "run.json").read_text())
    assert record["experiment"] == "ablate" and record["n_items"] == 30
    assert record["config"]["drop"] == ["1", "0,2"] and record["models"][0]["fingerprint"] == model.fingerprint
    assert record["command"][:2] == ["layerscope", "ablate"] and record["command"].count("--drop") == 2
    # Every annotation says something (an empty one is drawn by plotly.js as "new text").
    figure = result.figure()
    texts = [a.text for a in figure.layout.annotations]
    assert texts and all(texts)
    # One label per configuration, in the tables, the figures and the parts' file names.
    assert sorted(figure.data[0].y) == ["drop 0,2", "drop 1"]  # bars: not a sweep of single blocks
    image = result.images()["accuracy"]()
    assert isinstance(image, Figure)
    assert sorted(t.get_text() for t in image.axes[0].get_yticklabels()) == ["drop 0,2", "drop 1"]
    assert sorted(p.name for p in (tmp_path / "parts").glob("*.jsonl")) == [
        "baseline.jsonl",
        "drop-0,2.jsonl",
        "drop-1.jsonl",
    ]
    assert set(examples["config"]) == {"baseline", "drop 1", "drop 0,2"}


def test_resume_after_interruption_gives_the_same_files(tiny_models, tmp_path):
    model = tiny_models["gemma3"]
    config = AblateConfig(n=40, scoring="greedy", batch_size=16)
    run_and_save(config, model, tmp_path / "whole")

    seen = []

    def stop_after_two(name):
        seen.append(name)
        if len(seen) == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_and_save(config, model, tmp_path / "cut", stop_after_two)
    parts = sorted(p.name for p in (tmp_path / "cut" / "parts").iterdir())
    assert parts == ["baseline.jsonl", "drop-0.jsonl", "identity.json"]
    assert seen == ["baseline", "drop 0"]
    assert not (tmp_path / "cut" / "accuracy.csv").exists()
    # A writer killed mid-file leaves only a temporary name, which a rerun ignores.
    (tmp_path / "cut" / "parts" / ".drop-1.jsonl.x1y2.part").write_text('["item", "pro')

    resumed = []
    run_and_save(config, model, tmp_path / "cut", resumed.append)
    assert resumed == ["baseline", "drop 0", "drop 1", "drop 2"]
    assert json.loads((tmp_path / "cut" / "run.json").read_text())["resumed_configs"] == 2
    for name in FINAL_FILES:
        assert (tmp_path / "cut" / name).read_bytes() == (tmp_path / "whole" / name).read_bytes()


def test_rerun_with_another_config_is_refused(tiny_models, tmp_path):
    model = tiny_models["qwen3"]
    layerscope.ablate(model=model, n=10, drop="1", out=tmp_path)
    with pytest.raises(LayerscopeError, match=r"holds a different ablation run \(config.seed: stored 0, now 1\)"):
        layerscope.ablate(model=model, n=10, drop="1", seed=1, out=tmp_path)
    with pytest.raises(LayerscopeError, match=r"config.drop"):
        layerscope.ablate(model=model, n=10, drop="2", out=tmp_path)
    again = layerscope.ablate(model=model, n=10, drop="1", batch_size=3, out=tmp_path)  # batch size: same results
    assert again.resumed_configs == 2


def test_a_model_spec_is_loaded_once_and_timed(tiny_model_dirs, tiny_models):
    spec = ModelSpec(source=str(tiny_model_dirs["llama"]), name="tiny llama")
    result = layerscope.ablate(model=spec, n=6, drop="0-1")
    assert result.models[0]["display_name"] == "tiny llama" and result.timings["load"] > 0
    assert result.accuracy["config"].tolist() == ["baseline", "drop 0,1"]
    same = layerscope.ablate(model=tiny_models["llama"], n=6, drop="0-1")
    pd.testing.assert_frame_equal(result.examples, same.examples)


def test_without_out_nothing_is_kept(tiny_models, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = layerscope.ablate(model=tiny_models["llama"], n=5, drop="1")
    assert result.config.resume_dir is None and result.resumed_configs == 0
    assert list(tmp_path.iterdir()) == []
    assert "5 items, baseline accuracy" in repr(result) and "drop 1" in repr(result)


def test_parse_drop():
    assert parse_drop("4") == (4,)
    assert parse_drop("5,4") == (4, 5)
    assert parse_drop("2-5") == (2, 3, 4, 5)
    assert parse_drop("0, 3-4") == (0, 3, 4)
    for bad in ("", "a", "5-2", "1,,2", "-1"):
        with pytest.raises(LayerscopeError):
            parse_drop(bad)


def test_python_and_cli_defaults_agree():
    assert parse(["ablate"]) == AblateConfig()


@pytest.mark.parametrize(
    "kwargs, python, cli",
    [
        ({"digits": 4}, "digits=4 is not supported; valid: 1 to 3", "--digits 4 is not supported; valid: 1 to 3"),
        ({"ops": "+%"}, "ops='+%' has unknown operation '%'", "--ops +% has unknown operation '%'"),
        ({"drop": ("1,x",)}, "drop='1,x' has 'x', which is not a block number", "--drop 1,x has 'x', which is not"),
        ({"drop": ("2-1",)}, "drop='2-1' has the range '2-1', which runs backwards", "--drop 2-1 has the range"),
        ({"scoring": "best"}, "scoring='best' is not supported", "--scoring best is not supported"),
        ({"batch_size": 0}, "batch_size=0 must be at least 1", "--batch-size 0 must be at least 1"),
        ({"n": 500}, "n=500 exceeds the 287 distinct problems", "--n 500 exceeds the 287 distinct problems"),
        (
            {"task": "nosuch"},
            "task='nosuch' is not valid: unknown task 'nosuch'; valid: arithmetic, boolean, successor",
            "--task nosuch is not valid: unknown task 'nosuch'; valid: arithmetic, boolean, successor",
        ),
        ({"shots": -1}, "shots=-1 must be at least 0", "--shots -1 must be at least 0"),
        ({"task": "x.csv", "shots": 2}, "shots=2 applies to the built-in tasks only", "--shots 2 applies to"),
        (
            {"task": "capitals", "n": 61},
            "task='capitals' is not valid: n 61 exceeds the 60 distinct items",
            "--task capitals is not valid: n 61 exceeds the 60 distinct items",
        ),
        (
            {"task": "no-such.csv"},
            "task='no-such.csv' is not valid: no such task file",
            "--task no-such.csv is not valid: no such task file",
        ),
    ],
)
def test_bad_values_name_the_parameter_or_the_flag(kwargs, python, cli):
    config = AblateConfig(**kwargs)
    with pytest.raises(ConfigError) as caught:
        config.validate()
    assert str(caught.value).startswith(python), str(caught.value)
    assert caught.value.cli_message().startswith(cli), caught.value.cli_message()
    assert "--" not in str(caught.value)  # from Python, no flag names


def test_a_block_the_model_lacks_names_drop(tiny_models):
    message = r"^drop='1,3' names block 3, which does not exist; valid: 0 to 2 \(3 blocks\)"
    with pytest.raises(ConfigError, match=message):
        layerscope.ablate(model=tiny_models["llama"], n=5, drop=["1", "1,3"])


def test_task_file_with_greedy_scoring(tiny_model_dirs, tmp_path):
    path = tmp_path / "words.jsonl"
    rows = [{"prompt": "The word is", "answer": " red", "group": "colour"}, {"prompt": "Monday", "answer": " Tuesday"}]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    code = main(
        [
            "--quiet",
            "ablate",
            "--model",
            str(tiny_model_dirs["olmo3"]),
            "--task",
            str(path),
            "--scoring",
            "greedy",
            "--drop",
            "0-1",
            "--out",
            str(tmp_path / "out"),
        ]
    )
    assert code == 0
    table = pd.read_csv(tmp_path / "out" / "accuracy.csv")
    assert table["config"].tolist() == ["baseline", "drop 0,1"]
    assert table["n"].tolist() == [2, 2]
    assert table["n[colour]"].tolist() == [1, 1]


def test_line_separators_in_items_and_predictions_resume(tiny_model_dirs, tmp_path, capsys):
    """U+0085, U+2028, U+2029 (and the other separators ``str.splitlines`` knows) in a prompt, an answer or a
    predicted token: the run and every rerun that resumes from its parts end with exit 0, the same rows."""
    separators = ["\u0085", "\u2028", "\u2029", "\x1c", "\x0b"]
    rows = [{"prompt": f"a{sep}b", "answer": f" c{sep}"} for sep in separators]
    path = tmp_path / "separators.jsonl"
    path.write_text(json.dumps(rows[0], ensure_ascii=False) + "\n" + "".join(json.dumps(r) + "\n" for r in rows[1:]))
    out = tmp_path / "out"
    argv = ["--quiet", "ablate", "--model", str(tiny_model_dirs["llama"]), "--task", str(path), "--out", str(out)]
    assert main(argv) == 0, capsys.readouterr().err
    first = (out / "examples.csv").read_bytes()
    for part in (out / "parts").glob("*.jsonl"):
        part.read_bytes().decode("ascii")  # the writer escapes every non-ASCII character
    assert main(argv) == 0, capsys.readouterr().err
    assert json.loads((out / "run.json").read_text())["resumed_configs"] == 4
    assert (out / "examples.csv").read_bytes() == first
    assert pd.read_csv(out / "examples.csv")["prompt"].tolist()[:5] == [r["prompt"] for r in rows]
    # A part written before the writer escaped them (raw separators inside its strings) still loads.
    from layerscope.experiments.ablate_parts import PartStore

    store = PartStore(out, json.loads((out / "parts" / "identity.json").read_text()))
    table = store.load(()).assign(prediction="x\u2028y\u0085")
    lines = [json.dumps(list(table.columns))] + [json.dumps(r, ensure_ascii=False) for r in table.to_dict("records")]
    store.run_dir.part_path(store.name(())).write_text("\n".join(lines) + "\n", encoding="utf-8")
    pd.testing.assert_frame_equal(store.load(()), table)


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--drop", "3"], "layerscope: error: --drop 3 names block 3, which does not exist; valid: 0 to 2 (3 blocks)"),
        (["--drop", "1,x"], "layerscope: error: --drop 1,x has 'x', which is not a block number or a range like 2-5"),
        (["--task", "MISSING"], "lacks column 'answer'"),
        (["--task", "EMPTY"], "is empty; it needs columns prompt, answer"),
        (["--ops", "+%"], "unknown operation '%'"),
        (["--n", "500"], "--n 500 exceeds the 287 distinct problems"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tiny_model_dirs, tmp_path, capsys, extra, message):
    (tmp_path / "missing.csv").write_text("prompt,solution\n5+2=,7\n")
    (tmp_path / "empty.csv").write_text("")
    files = {"MISSING": str(tmp_path / "missing.csv"), "EMPTY": str(tmp_path / "empty.csv")}
    extra = [files.get(e, e) for e in extra]
    code = main(["--quiet", "ablate", "--model", str(tiny_model_dirs["llama"]), *extra, "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 2
    assert message in err and err.count("\n") == 1


def test_a_builtin_task_says_its_scoring_chance_and_intervals(tiny_model_dirs, tmp_path):
    out = tmp_path / "out"
    argv = ["--quiet", "ablate", "--model", str(tiny_model_dirs["gemma3"]), "--task", "successor"]
    assert main([*argv, "--shots", "1", "--n", "24", "--seed", "2", "--out", str(out)]) == 0
    table = pd.read_csv(out / "accuracy.csv")
    examples = pd.read_csv(out / "examples.csv")
    record = json.loads((out / "run.json").read_text())
    assert record["scoring"] == "answer" and record["config"]["shots"] == 1  # " 53" is several tokens
    assert record["chance"] == pytest.approx(table["chance"].iloc[0])
    assert set(table["scoring"]) == {"answer"} and set(examples["scoring"]) == {"answer"}
    assert {"ci_low", "ci_high", "chance", "mean_p_first", "mean_p_answer"} <= set(table.columns)
    assert (table["ci_low"] <= table["accuracy"]).all() and (table["accuracy"] <= table["ci_high"]).all()
    assert ((examples["p_answer"] <= examples["p_first"] + 1e-12) & (examples["p_answer"] > 0)).all()
    assert table["config"].tolist() == ["baseline", "drop 0", "drop 1", "drop 2"]
    assert all(p.count("\n") == 1 for p in examples["prompt"])  # one worked example before each query
    result = layerscope.load_run(out)
    assert "answer scoring" in result.title() and result.scoring == "answer"
    names = [trace.name for trace in result.figure().data]
    assert "95% interval (bootstrap)" in names and names[0] == "all items"
    # The same run with first scoring says so everywhere.
    first = layerscope.ablate("successor", model=str(tiny_model_dirs["gemma3"]), n=24, shots=1, seed=2, scoring="first")
    assert "first scoring" in first.title() and set(first.examples["scoring"]) == {"first"}
    assert first.examples["p_answer"].isna().all()
    assert first.examples["p_first"].tolist() == pytest.approx(examples["p_first"].tolist(), rel=1e-4)


def test_the_tasks_command_lists_every_builtin_task(capsys):
    from layerscope.tasks.registry import TASKS

    assert main(["tasks"]) == 0
    text = capsys.readouterr().out
    for name in TASKS:
        assert f"\n{name} " in text
    assert main(["tasks", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in rows] == list(TASKS)
    for row in rows:
        assert 0 < row["chance"] < 1 and row["baseline"] > row["chance"] + 0.15
        assert row["scoring"] in ("first", "answer")


@pytest.mark.parametrize("arch", ["llama", "gemma3"])
def test_a_block_the_model_lacks_is_refused_before_it_loads(tiny_model_dirs, tmp_path, capsys, monkeypatch, arch):
    """``--drop 2`` on a 2-block model: one line naming --drop, from the config alone (loading would fail)."""
    import layerscope.models.loading as loading

    def no_loading(*args, **kwargs):
        raise AssertionError("the model was loaded before --drop was checked")

    monkeypatch.setattr(loading, "load_model", no_loading)
    depth = model_depth(str(tiny_model_dirs[arch]))
    assert depth is not None and depth >= 1
    argv = ["ablate", "--model", str(tiny_model_dirs[arch]), "--drop", str(depth), "--out", str(tmp_path / "r")]
    assert main(["--quiet", *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--drop" in err[0] and f"block {depth}, which does not exist" in err[0]


def test_the_default_models_depth_is_read_from_its_header():
    assert model_depth(None) == model_depth("default") == 18
    assert model_depth("no-such/model") is None
