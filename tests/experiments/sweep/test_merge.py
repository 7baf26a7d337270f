"""``merge``: each table of the experiment over every model; layers' metrics and ablate's curves on relative depth.

The models run here one after another (``--no-ray``); the Ray side is in ``test_run.py``.
"""

from __future__ import annotations

import json

from sweep_tables import read_table, same_table

from layerscope.cli import main


def test_layers_and_ablate_merge_on_relative_depth(tiny_model_dirs, tmp_path):
    llama, qwen3 = str(tiny_model_dirs["llama"]), str(tiny_model_dirs["qwen3"])
    out = tmp_path / "layers"
    argv = ["--quiet", "sweep", "layers", "--model", llama, "--model", f"second={qwen3}"]
    argv += ["--set", "colors", "--set", "months", "--layers", "embed,1,norm"]  # 3 of 5 layers: fewer images drawn
    code = main([*argv, "--no-ray", "--out", str(out)])
    assert code == 0
    status = read_table(out / "sweep.csv")
    assert list(status["model"]) == ["llama", "second"] and set(status["status"]) == {"ok"}
    merged = read_table(out / "metrics.csv")
    for name in ("llama", "second"):
        alone = read_table(out / name / "metrics.csv")
        same_table(merged[merged["model"] == name].reset_index(drop=True), alone)
    blocks = merged[merged["layer"] != "embed"]
    assert ((blocks["depth"] / 3 - blocks["relative_depth"]).abs() < 1e-9).all()  # tiny models have 3 blocks
    figure = json.loads((out / "sweep.plotly.json").read_text())
    assert {t["name"] for t in figure["data"]} == {"llama", "second"}
    assert (out / "metrics.png").is_file() and (out / "sweep.png").is_file()
    record = json.loads((out / "run.json").read_text())
    assert record["command"][:3] == ["layerscope", "sweep", "layers"] and "--no-ray" in record["command"]

    out = tmp_path / "ablate"
    argv = ["--quiet", "sweep", "ablate", "--model", llama, "--model", qwen3, "--n", "12"]
    assert main([*argv, "--ops", "+", "--no-ray", "--out", str(out)]) == 0
    accuracy = read_table(out / "accuracy.csv")
    assert set(accuracy["model"]) == {"llama", "qwen3"}
    single = accuracy[accuracy["config"] != "baseline"]
    expected = single["removed_layers"].astype(int).add(1).div(3)
    assert (single["relative_depth"].astype(float) - expected).abs().max() < 1e-9
    assert (accuracy.loc[accuracy["config"] == "baseline", "relative_depth"] == "").all()
    assert (out / "sweep.png").is_file()
