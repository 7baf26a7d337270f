"""The experiment protocol: config errors, the reproducing command, results that present themselves."""

from __future__ import annotations

import dataclasses
import shlex

import pytest

import layerscope
from layerscope.cli.main import build_parser
from layerscope.experiment import ConfigError
from layerscope.experiments.tokens import TokensConfig
from layerscope.model_spec import ModelSpec


def _cli_config(argv: list[str]) -> TokensConfig:
    """The config the command line builds from ``argv`` (without running it)."""
    from layerscope.cli.declared import parse

    return parse(argv)


@pytest.mark.parametrize(
    "config",
    [
        TokensConfig(),
        TokensConfig(sets=("digits", "colors"), dims=2, basis_set="digits", leading_space=True, ordered=("colors",)),
        TokensConfig(
            tokens=("red", "green blue"), multi_token="last", model=ModelSpec(source="x.gguf", dtype="bfloat16")
        ),
        TokensConfig(model=ModelSpec(source="org/model", trust_remote_code=True, device_map="auto")),
    ],
)
def test_command_rebuilds_the_same_config(config):
    argv = config.command()
    assert argv[:2] == ["layerscope", "tokens"]
    assert _cli_config(shlex.split(shlex.join(argv))) == config


def test_config_errors_name_the_parameter_in_python_and_the_flag_on_the_command_line():
    config = TokensConfig(dims=4)
    with pytest.raises(ConfigError) as caught:
        config.validate()
    assert str(caught.value) == "dims=4 is not supported; valid: 2, 3"
    assert caught.value.cli_message() == "--dims 4 is not supported; valid: 2, 3"
    with pytest.raises(ConfigError, match=r"^basis_set='nope' is not among the sets"):
        TokensConfig(sets=("digits",), basis_set="nope").validate()
    with pytest.raises(ConfigError, match=r"^multi_token='median'"):
        layerscope.tokens("digits", multi_token="median", model="/no/such/model")


def test_configs_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        TokensConfig().dims = 2  # type: ignore[misc]


def test_validation_runs_before_any_model_loads(tmp_path):
    # A missing model would fail at load; the bad dims must be reported first.
    with pytest.raises(ConfigError, match="dims=5"):
        layerscope.execute(TokensConfig(dims=5, model=ModelSpec(source=str(tmp_path / "missing"))))


def test_result_presents_itself_briefly(tiny_models):
    result = layerscope.tokens("digits", model=tiny_models["llama"], dims=2)
    text = repr(result)
    assert text.splitlines()[0].startswith("TokensResult(tokens on ")
    assert "projection: 10 rows" in text and "embeddings: array (10, 64) float32" in text
    assert len(text.splitlines()) < 10
    page = result._repr_html_()
    assert "<table" in page and "explained variance" in page and "plotly" in page.lower()


def test_save_writes_every_declared_output_and_run_json(tiny_models, tmp_path):
    import json

    result = layerscope.tokens("digits", model=tiny_models["qwen3"], dims=2)
    out = result.save(tmp_path / "run")
    names = {p.name for p in out.iterdir()}
    assert set(result.iter_outputs()) <= names
    assert {"run.json", "index.plotly.json"} <= names
    assert not [n for n in names if n.endswith(".part")]
    record = json.loads((out / "run.json").read_text())
    assert record["experiment"] == "tokens"
    assert record["command"][-2:] == ["--out", str(out)]
    assert record["config"]["dims"] == 2


def test_positional_values_that_look_like_options_are_kept_apart():
    from layerscope.experiments.layout import LayoutConfig

    config = LayoutConfig(source="-odd-name.gguf")
    argv = config.command()
    assert argv[-2:] == ["--", "-odd-name.gguf"]
    assert build_parser().parse_args(argv[1:]).source == "-odd-name.gguf"


@pytest.mark.parametrize("value", [0, -3, 2.5, True, "8"])
def test_counts_must_be_whole_numbers_of_at_least_one(value):
    from layerscope.experiments.compare import CompareConfig
    from layerscope.experiments.layers import LayersConfig

    for config in (
        LayersConfig(batch_size=value),
        CompareConfig(models=(ModelSpec(), ModelSpec("b")), batch_size=value),
    ):
        with pytest.raises(ConfigError, match=rf"^batch_size={value!r} must be at least 1"):
            config.validate()
