"""Attention / MLP ablation through the experiment and the command: labels, the part column, one curve per part."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from matplotlib.figure import Figure

import layerscope
from layerscope.capture.ablation import LayerAblation, encode_task
from layerscope.cli import main
from layerscope.cli.declared import parse
from layerscope.experiment import ConfigError
from layerscope.experiments.ablate import AblateConfig, run_ablate
from layerscope.experiments.ablate_parts import config_label, parse_parts, part_name


def test_labels_keep_blocks_as_they_were():
    assert config_label(()) == config_label((), "attn") == "baseline"
    assert config_label((4,)) == "drop 4" and config_label((4, 5), "block") == "drop 4,5"
    assert config_label((4,), "attn") == "drop attn 4" and config_label((4, 5), "mlp") == "drop mlp 4,5"
    assert part_name((4, 5), "mlp") == "drop-mlp-4,5" and part_name((4,)) == "drop-4"


def test_parse_parts():
    assert parse_parts("block") == ("block",)
    assert parse_parts("attn, mlp") == ("attn", "mlp")
    assert parse_parts("all") == ("block", "attn", "mlp") == parse_parts(["all", "mlp"])
    assert parse_parts(["mlp", "mlp"]) == ("mlp",)
    assert AblateConfig(part="attn").part == ("attn",) and AblateConfig().part == ("block",)
    # A block run records no part in parts/identity.json, as before parts existed: such runs still resume.
    assert "part" not in AblateConfig().identity() and AblateConfig(part="mlp").identity()["part"] == ("mlp",)


def test_a_part_sweep(tiny_models, tmp_path):
    model = tiny_models["gemma3"]
    result = layerscope.ablate("arithmetic", model=model, n=30, part="attn,mlp", out=tmp_path)
    labels = ["baseline", "drop attn 0", "drop attn 1", "drop attn 2", "drop mlp 0", "drop mlp 1", "drop mlp 2"]
    table = pd.read_csv(tmp_path / "accuracy.csv", dtype={"removed_layers": str})
    assert table["config"].tolist() == labels
    assert table["part"].tolist() == ["none"] + ["attn"] * 3 + ["mlp"] * 3
    assert table["removed_layers"].fillna("").astype(str).tolist() == ["", "0", "1", "2", "0", "1", "2"]
    assert list(table.columns[:4]) == ["config", "part", "removed_layers", "accuracy"]
    # Each row is the engine's verdict for that part.
    examples = result.examples
    encoded = encode_task(model, list(examples["prompt"][:30]), list(examples["answer"][:30]))
    engine = LayerAblation(model, encoded, needed=[(1,), (2,)])
    for part, k in (("attn", 1), ("mlp", 2)):
        rows = examples[examples["config"] == f"drop {part} {k}"]
        assert rows["correct"].tolist() == engine.run((k,), part).correct
        assert set(rows["part"]) == {part}
    # One line per part over the block number, the baseline marked once.
    figure = result.figure()
    mains = [trace for trace in figure.data if trace.name in ("attention", "MLP")]
    assert [t.name for t in mains] == ["attention", "MLP"]
    assert all(list(t.x) == [0, 1, 2] and t.type == "scatter" for t in mains)
    assert list(mains[1].customdata) == ["drop mlp 0", "drop mlp 1", "drop mlp 2"]
    assert list(mains[1].y) == table["accuracy"].tolist()[4:]
    assert "attention or MLPs removed" in result.title()
    assert figure.layout.xaxis.title.text.startswith("decoder block (the part")
    image = result.images()["accuracy"]()
    assert isinstance(image, Figure)
    assert [t.get_text() for t in image.axes[0].get_legend().get_texts()][:2] == ["attention", "MLP"]
    assert sorted(p.name for p in (tmp_path / "parts").glob("drop-mlp-*.jsonl")) == [
        "drop-mlp-0.jsonl",
        "drop-mlp-1.jsonl",
        "drop-mlp-2.jsonl",
    ]
    record = json.loads((tmp_path / "run.json").read_text())
    assert record["config"]["part"] == ["attn", "mlp"] and "--part attn,mlp" in " ".join(record["command"])
    loaded = layerscope.load_run(tmp_path)
    pd.testing.assert_frame_equal(loaded.accuracy, result.accuracy)
    finding = result.findings().get("accuracy", "")
    assert "no removal" in finding or "the attention of block" in finding or "the MLP of block" in finding


def test_interrupted_part_sweep_resumes(tiny_models, tmp_path):
    model = tiny_models["olmo3"]
    config = AblateConfig(n=20, part=("mlp", "block"), drop=("1", "0,2"), resume_dir=str(tmp_path))
    seen = []

    def stop_after_two(label):
        seen.append(label)
        if len(seen) == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_ablate(config, model, on_config=stop_after_two)
    assert seen == ["baseline", "drop mlp 1"]
    resumed = run_ablate(config, model)
    fresh = run_ablate(AblateConfig(n=20, part=("mlp", "block"), drop=("1", "0,2")), model)
    assert resumed.resumed_configs == 2
    assert resumed.accuracy["config"].tolist() == ["baseline", "drop mlp 1", "drop mlp 0,2", "drop 1", "drop 0,2"]
    pd.testing.assert_frame_equal(resumed.examples, fresh.examples)


@pytest.mark.parametrize("config", [AblateConfig(part="attn"), AblateConfig(part="all", drop=("4,5",))])
def test_command_reparsed_by_the_cli_gives_the_same_config(config):
    argv = config.command()
    assert argv.count("--part") == 1
    assert parse(argv) == config


def test_bad_part_names_the_parameter_or_the_flag(tiny_model_dirs, tmp_path, capsys):
    with pytest.raises(ConfigError) as caught:
        AblateConfig(part="attn,head").validate()
    assert str(caught.value).startswith(
        "part='attn,head' names unknown part 'head'; valid: 'block', 'attn', 'mlp', 'all'"
    ), str(caught.value)
    code = main(
        ["--quiet", "ablate", "--model", str(tiny_model_dirs["llama"]), "--part", "heads", "--out", str(tmp_path)]
    )
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert "--part heads names unknown part 'heads'; valid: 'block', 'attn', 'mlp', 'all'" in err


def test_command_with_part(tiny_model_dirs, tmp_path):
    out = tmp_path / "out"
    code = main(
        ["--quiet", "ablate", "--model", str(tiny_model_dirs["gpt_oss"]), "--n", "10", "--part", "mlp", "--drop", "0-1"]
        + ["--out", str(out)]
    )
    assert code == 0
    table = pd.read_csv(out / "accuracy.csv")
    assert table["config"].tolist() == ["baseline", "drop mlp 0,1"] and table["part"].tolist() == ["none", "mlp"]
