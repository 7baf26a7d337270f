"""The ablate experiment and command: outputs, resume after an interruption, bad input."""

from __future__ import annotations

import json

import pandas as pd
import pytest

import layerscope
from layerscope.capture.ablation import encode_task
from layerscope.cli import main
from layerscope.errors import LayerscopeError
from layerscope.experiments.ablate import AblateConfig, parse_drop, run_ablate

FINAL_FILES = ("accuracy.csv", "examples.csv")


def run_and_save(config, model, out, on_config=None):
    result = run_ablate(config, model, out=out, on_config=on_config)
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
    # Every annotation says something (an empty one is drawn by plotly.js as "new text").
    texts = [a.text for a in result.figure().layout.annotations]
    assert texts and all(texts)


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
    assert not (tmp_path / "cut" / "accuracy.csv").exists()
    # A writer killed mid-file leaves only a temporary name, which a rerun ignores.
    (tmp_path / "cut" / "parts" / ".drop-1.jsonl.x1y2.part").write_text('["item", "pro')

    resumed = []
    run_and_save(config, model, tmp_path / "cut", resumed.append)
    assert resumed == ["baseline", "drop-0", "drop-1", "drop-2"]
    assert json.loads((tmp_path / "cut" / "run.json").read_text())["resumed_configs"] == 2
    for name in FINAL_FILES:
        assert (tmp_path / "cut" / name).read_bytes() == (tmp_path / "whole" / name).read_bytes()


def test_rerun_with_another_config_is_refused(tiny_models, tmp_path):
    model = tiny_models["qwen3"]
    run_ablate(AblateConfig(n=10, drop=["1"]), model, out=tmp_path)
    with pytest.raises(LayerscopeError, match=r"holds a different ablation run \(config.seed: stored 0, now 1\)"):
        run_ablate(AblateConfig(n=10, drop=["1"], seed=1), model, out=tmp_path)
    with pytest.raises(LayerscopeError, match=r"config.drop"):
        run_ablate(AblateConfig(n=10, drop=["2"]), model, out=tmp_path)
    run_ablate(AblateConfig(n=10, drop=["1"], batch_size=3), model, out=tmp_path)  # batch size: same results


def test_parse_drop():
    assert parse_drop("4") == (4,)
    assert parse_drop("5,4") == (4, 5)
    assert parse_drop("2-5") == (2, 3, 4, 5)
    assert parse_drop("0, 3-4") == (0, 3, 4)
    for bad in ("", "a", "5-2", "1,,2", "-1"):
        with pytest.raises(LayerscopeError, match="bad --drop"):
            parse_drop(bad)


def test_task_file_with_greedy_scoring(tiny_model_dirs, tmp_path):
    path = tmp_path / "words.jsonl"
    rows = [{"prompt": "The word is", "answer": " red", "group": "colour"}, {"prompt": "Monday", "answer": " Tuesday"}]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    code = main(["--quiet", "ablate", "--model", str(tiny_model_dirs["olmo3"]), "--task", str(path),
                 "--scoring", "greedy", "--drop", "0-1", "--out", str(tmp_path / "out")])
    assert code == 0
    table = pd.read_csv(tmp_path / "out" / "accuracy.csv")
    assert table["config"].tolist() == ["baseline", "drop 0,1"]
    assert table["n"].tolist() == [2, 2]
    assert table["n[colour]"].tolist() == [1, 1]


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--drop", "3"], "layerscope: error: layer 3 does not exist; valid: 0 to 2 (3 layers)"),
        (["--drop", "1,x"], "layerscope: error: bad --drop '1,x': 'x' is not a layer or a range like 2-5"),
        (["--task", "MISSING"], "lacks column 'answer'"),
        (["--task", "EMPTY"], "is empty; it needs columns prompt, answer"),
        (["--ops", "+%"], "unknown operation '%'"),
        (["--n", "500"], "n 500 exceeds the 287 distinct problems"),
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
