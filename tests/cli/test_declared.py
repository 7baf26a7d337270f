"""Each command is generated from its experiment's config: the command line parses back to the config it came
from, ``--help`` lists exactly the config's fields, and the Python faces take the same parameters."""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import shlex

import pytest

from layerscope.cli.declared import cli_fields, parse
from layerscope.cli.main import build_parser
from layerscope.convert.quantize import QuantizeConfig
from layerscope.experiments.ablate import AblateConfig
from layerscope.experiments.compare import CompareConfig
from layerscope.experiments.echo import EchoConfig
from layerscope.experiments.encode import EncodeConfig, SimilarConfig
from layerscope.experiments.inspect import InspectConfig
from layerscope.experiments.layers import LayersConfig
from layerscope.experiments.layout import LayoutConfig
from layerscope.experiments.patch import PatchConfig
from layerscope.experiments.report import ReportConfig
from layerscope.experiments.sensitivity import SensitivityConfig
from layerscope.experiments.stages import StagesConfig
from layerscope.experiments.sweep import SweepConfig
from layerscope.experiments.tokens import TokensConfig
from layerscope.experiments.tour import TourConfig
from layerscope.model_spec import ModelSpec
from layerscope.registry import ENTRIES

SPEC = ModelSpec("org/model", name="big one", dtype="bfloat16", device_map="auto", trust_remote_code=True)

#: representative configs of every command, each far from the defaults
CONFIGS = {
    "tokens": [
        TokensConfig(model=SPEC, sets=("digits", "colors"), dims=2, basis_set="digits", ordered=("colors",)),
        TokensConfig(tokens=("red", "green blue"), multi_token="last", leading_space=True, normalize=True),
    ],
    "layers": [
        LayersConfig(
            models=(ModelSpec("a", name="first", dtype="float16"), ModelSpec(None, name="second", dtype="float16")),
            sets=("categories",),
            tokens=("a", "b"),
            leading_space=True,
            multi_token="first",
            basis="-1",
            dims=3,
            layers="embed,0,-1",
            context="The word is {word}",
            batch_size=8,
            memory_budget="512MB",
        )
    ],
    "inspect": [
        InspectConfig(
            model=ModelSpec("m.gguf", max_memory="cpu=2GiB", offload_dir="/tmp/off"),
            prompts=("5+2=", "-3 and 4"),
            prompts_file="p.txt",
            position=-2,
            target=("7", "x"),
            bos=False,
            top_k=3,
            phases=2,
            compare_model=ModelSpec("other", max_memory="cpu=2GiB", offload_dir="/tmp/off"),  # the same options
            raw=True,
        ),
        InspectConfig(  # the compared model's own options travel with it
            model=ModelSpec("m.gguf", dtype="float16"), compare_model=ModelSpec("m.gguf", name="b", dtype="bfloat16")
        ),
    ],
    "ablate": [
        AblateConfig(
            model=SPEC,
            task="arithmetic",
            n=30,
            ops="-+",
            digits=2,
            allow_negative=True,
            inexact_division=True,
            duplicates=True,
            seed=3,
            drop=("4", "2-5"),
            part=("attn", "mlp"),
            scoring="answer",
            batch_size=8,
        ),
        AblateConfig(task="capitals", shots=2, n=10, scoring="answer", seed=4),
        AblateConfig(task="copying", shots=0, scoring="first"),
        AblateConfig(task="words.jsonl", drop=("1",), part=("block", "attn", "mlp")),
    ],
    "patch": [
        PatchConfig(
            model=SPEC,
            clean="When Mary and John went, John gave it to",
            corrupt="-When Mary and John went, Mary gave it to",
            answer=" Mary",
            wrong="-John",
            part=("resid", "heads"),
            head_positions="each",
            direction="noise",
            metric="kl",
            batch_size=8,
        ),
        PatchConfig(pairs="names", n=12, seed=3, part=("attn", "mlp"), metric="prob"),
        PatchConfig(
            pairs="my pairs.csv", method="attribution", exact_sample=7, source_model=ModelSpec("ref", dtype="float32")
        ),
    ],
    "echo": [
        EchoConfig(
            models=(ModelSpec("a"), ModelSpec("b")),
            sets=("months", "words.json"),
            tokens=("red",),
            leading_space=False,
            bos="with",
            top_k=2,
            prompts=("Hello", "--odd"),
            max_new_tokens=0,
            batch_size=4,
        )
    ],
    "quantize": [
        QuantizeConfig(source="-odd.gguf", to="gguf", type="Q4_0"),
        QuantizeConfig(source="model dir", to="mlx", bits=8, group_size=32, dtype="bfloat16"),
        QuantizeConfig(source="-odd.gguf", to="gguf", recipe="runs/sensitivity 1/recipe.json"),
        QuantizeConfig(source="model dir", recipe="-recipe.json", dtype="float16"),
    ],
    "layout": [LayoutConfig(source="-odd.gguf", fold=False, json=True, html="page.html", batch=2, seq_len=64)],
    "encode": [
        EncodeConfig(
            texts=("a cat", "-a dog"), file="t.txt", model=ModelSpec("mini", trust_remote_code=True), batch_size=2
        ),
        EncodeConfig(texts=("x",), prompt_name="query"),
    ],
    "similar": [
        SimilarConfig(
            texts=("a", "b"), file="t.txt", query="q", query_prompt="none", document_prompt="document", batch_size=3
        )
    ],
    "stages": [StagesConfig(texts=("a", "b", "c"), file="t.txt", dims=3, prompt_name="query", batch_size=1)],
    "report": [ReportConfig(run_dirs=("runs/a", "runs/b"), title="My page")],
    "tour": [TourConfig(model=SPEC, quick=True)],
    "sensitivity": [
        SensitivityConfig(
            model=ModelSpec("r"),
            quantized=ModelSpec("q-mlx"),
            task=("arithmetic", "boolean"),
            n=3,
            shots=0,
            budget="5%",
            keep_bits=6,
            activations=False,
            seed=2,
            batch_size=4,
        ),  # fmt: skip
        SensitivityConfig(bits=3, group_size=32, text="p.txt", budget="4.5bpw"),
    ],
    "compare": [
        CompareConfig(
            models=(ModelSpec("a", name="x"), ModelSpec("b")),
            prompts=("1+1=",),
            prompts_file="p.txt",
            bos=False,
            reference="x",
            weights=False,
            batch_size=4,
        ),
        CompareConfig(
            models=(ModelSpec("a"), ModelSpec("b")),
            sets=("colors",),
            tokens=("red", "blue"),
            context="nobos",
            leading_space=True,
        ),
        CompareConfig(  # one model in two dtypes: each keeps its own
            models=(ModelSpec(None, name="f32"), ModelSpec(None, name="bf16", dtype="bfloat16", device_map="auto")),
        ),
        CompareConfig(
            models=(
                ModelSpec("a@b", max_memory="cpu=2GiB,0=1GiB", trust_remote_code=True, dtype="float16"),
                ModelSpec("a@b", offload_dir="/tmp/off", dtype="float16"),
            ),
        ),
    ],
    "sweep": [
        SweepConfig(
            base=AblateConfig(n=5, ops="+", drop=("1",)),
            models=(ModelSpec("a", dtype="bfloat16"), ModelSpec("b", name="bee", dtype="bfloat16")),
            ray_address="ray://host:10001",
            use_ray=False,
            num_cpus=2,
            memory_per_model="8GB",
        ),
        SweepConfig(base=AblateConfig(n=5), models=(ModelSpec("a"), ModelSpec("a", name="b", dtype="bfloat16"))),
        SweepConfig(base=InspectConfig(prompts=("1+1=",), compare_model=ModelSpec("c")), models=(ModelSpec("a"),)),
    ],
}


def test_every_command_has_representative_configs():
    with_commands = {e.name for e in ENTRIES.values() if e.command and e.config is not None}
    assert set(CONFIGS) == with_commands


@pytest.mark.parametrize(
    "config", [c for configs in CONFIGS.values() for c in configs], ids=lambda c: " ".join(c.command()[1:])
)
def test_the_command_parses_back_to_its_config(config):
    """``parse(config.command()) == config``; through a shell's quoting too; and every field differs from its
    default in some config of its experiment, so each field's way through the command line is exercised."""
    assert parse(config.command()) == config
    assert parse(shlex.split(shlex.join(config.command()))) == config


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_the_configs_set_every_field_of_the_command(name):
    configs = CONFIGS[name]
    cls = type(configs[0])
    unset = [
        f.name
        for f in cli_fields(cls)
        if all(getattr(c, f.name) == _default(f) for c in configs) and f.name not in ("model", "models")
    ]
    if name == "sweep":  # the swept experiment's fields are covered by its own configs
        unset = [n for n in unset if n != "base"]
    assert unset == []


def _default(f):
    return f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default


def _subparsers(parser):
    return next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction").choices


def _options(parser) -> set[str]:
    return {s for a in parser._actions for s in (a.option_strings or [a.metavar or a.dest])}


MODEL_FLAGS = {
    "dtype": "--dtype",
    "device_map": "--device-map",
    "max_memory": "--max-memory",
    "offload_dir": "--offload-dir",
    "trust_remote_code": "--trust-remote-code",
}
COMMON = {"-h", "--help", "--debug", "--quiet"}
#: what each command adds to its config's fields: where it writes, and how it prints
RUN_OPTIONS = {"encode": {"--out"}, "similar": {"--json", "--out", "--force"}}


def _expected(cls, skip=()) -> set[str]:
    found = set()
    for f in cli_fields(cls, skip):
        if f.metadata.get("positional"):
            found.add(f.metadata.get("metavar") or f.name)
            continue
        found.add(cls.flag_of(f.name))
        if f.name in ("model", "models"):
            found |= {MODEL_FLAGS[o] for o in cls.model_options}
        if f.metadata.get("item"):
            found.add(f.metadata["item"])
    return found


@pytest.mark.parametrize("name", [e.name for e in ENTRIES.values() if e.command and e.config is not None])
def test_help_lists_exactly_the_fields_of_the_config(name, capsys):
    from layerscope.cli import main

    entry = ENTRIES[name]
    commands = _subparsers(build_parser())
    cls = entry.config_class()
    if name == "sweep":
        for swept, parser in _subparsers(commands["sweep"]).items():
            base = ENTRIES[swept].config_class()
            expected = _expected(base, skip=("model", "models")) | _expected(cls, skip=("base",))
            assert _options(parser) == expected | COMMON | {"--out", "--force"}, swept
        return
    run_options = RUN_OPTIONS.get(name, {"--out", "--force"})
    assert _options(commands[name]) == _expected(cls) | COMMON | run_options
    assert main([name, "--help"]) == 0
    text = capsys.readouterr().out
    for option in _expected(cls):
        assert option in text


#: fields a Python face takes another way, and why
TAKEN_OTHERWISE = {
    ("capture", "inline"): "sets: a dict of word lists",
    ("ablate", "resume_dir"): "out",
    ("echo", "multi_token"): "not used by echo",
    ("compare", "multi_token"): "not used by compare",
    ("layout", "json"): "what the command line prints",
    ("encode", "file"): "texts: a list",
    ("similar", "file"): "texts: a list",
    ("stages", "file"): "texts: a list",
    ("report", "model_load_s"): "given by tour only",
    ("sweep", "base"): "experiment and its options",
    ("sweep", "resume_dir"): "out",
    ("quantize", "resume_dir"): "out",
}
#: parameters of a Python face that are not config fields
NOT_FIELDS = {"out", "force", "model", "experiment", "options"}


@pytest.mark.parametrize(
    "name, function", [(e.name, f) for e in ENTRIES.values() if e.config is not None for f in e.functions]
)
def test_python_faces_take_the_fields_of_their_config(name, function):
    entry = ENTRIES[name]
    face = getattr(importlib.import_module(entry.module), function)
    parameters = inspect.signature(face).parameters
    fields = {f.name: f for f in dataclasses.fields(entry.config_class())}
    missing = sorted(n for n in fields if n not in parameters and (name, n) not in TAKEN_OTHERWISE)
    assert missing == []
    assert sorted(p for p in parameters if p not in fields and p not in NOT_FIELDS) == []
    for p, parameter in parameters.items():  # a default the face gives is the config's
        if p in fields and parameter.default not in (inspect.Parameter.empty, None):
            default = _default(fields[p])
            given = parameter.default
            if isinstance(default, tuple) and not isinstance(given, tuple):  # one value for a sequence
                given = tuple(given) if isinstance(given, list) else (given,)
            assert given == default, (function, p)
