"""``layerscope inspect`` on the command line: the config it builds, its messages, its run directory."""

from __future__ import annotations

import pytest

from layerscope.cli import main
from layerscope.cli.declared import parse
from layerscope.experiments.inspect import InspectConfig
from layerscope.model_spec import ModelSpec


def _parsed(argv: list[str], monkeypatch) -> InspectConfig:
    """The config the command line builds from ``argv`` (nothing runs)."""
    return parse(argv)


@pytest.mark.parametrize(
    "config",
    [
        InspectConfig(),
        InspectConfig(prompts=("5+2=", "3+4=", "a b"), target=("7",), position=-2, top_k=3, phases=2, raw=True),
        InspectConfig(prompts_file="prompts.txt", bos=False, target=("7", "8")),
        InspectConfig(
            model=ModelSpec(source="m.gguf", dtype="bfloat16", trust_remote_code=True),
            compare_model=ModelSpec(source="other", dtype="bfloat16", trust_remote_code=True),
        ),
        InspectConfig(compare_model=ModelSpec()),
    ],
)
def test_command_reparsed_gives_the_same_config(config, monkeypatch):
    argv = config.command()
    assert argv[:2] == ["layerscope", "inspect"]
    assert _parsed(argv[1:], monkeypatch) == config


def test_cli_defaults_equal_the_config_defaults(monkeypatch):
    assert _parsed(["inspect"], monkeypatch) == InspectConfig()


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--prompt", "5+2=", "--position", "9"], "position 9 is outside prompt '5+2=' of"),
        (["--prompt", "  "], "--prompt '  ' is empty"),
        (["--prompt", "hello", "--target", ""], "unknown target token ''"),
        (
            ["--prompt", "a", "--prompt", "b", "--prompt", "c", "--target", "x", "--target", "y"],
            "--target x,y gives 2 targets for 3 prompts",
        ),
        (["--top-k", "0"], "--top-k 0 must be at least 1"),
        (["--phases", "0"], "--phases 0 must be at least 1"),
    ],
)
def test_cli_bad_input(extra, message, tiny_model_dirs, capsys, tmp_path):
    code = main(["--quiet", "inspect", "--model", str(tiny_model_dirs["llama"]), *extra, "--out", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err


def test_cli_writes_heatmap_and_prints_key_numbers(tiny_model_dirs, tmp_path, capsys):
    out = tmp_path / "r"
    code = main(["inspect", "--model", str(tiny_model_dirs["olmo3"]), "--prompt", "5+2=", "--out", str(out)])
    captured = capsys.readouterr()
    assert code == 0 and captured.out.strip().endswith(str(out / "heatmap.html"))
    assert "'5+2=': top-1" in captured.err and "target '7' rank" in captured.err  # key numbers, on stderr
    assert (out / "heatmap.png").stat().st_size > 0
