"""ModelSpec: one way to say which model."""

from __future__ import annotations

import pytest

from layerscope.errors import LayerscopeError
from layerscope.model_spec import ModelSpec, unique_name


def test_default_source_is_none_and_default_means_the_same():
    assert ModelSpec() == ModelSpec(source="default")
    assert ModelSpec().argv() == []
    assert ModelSpec().label == "default"


def test_of_accepts_sources_specs_and_loaded_models(tiny_models):
    spec = ModelSpec(source="a/b", dtype="float16")
    assert ModelSpec.of(spec) is spec
    assert ModelSpec.of("a/b") == ModelSpec(source="a/b")
    assert ModelSpec.of(None) == ModelSpec()
    model = tiny_models["llama"]
    assert ModelSpec.of(model).source == model.source
    with pytest.raises(LayerscopeError, match="model=42 is not a model"):
        ModelSpec.of(42)


def test_argv_carries_every_option():
    spec = ModelSpec(source="m.gguf", dtype="bfloat16", device_map="auto", trust_remote_code=True)
    assert spec.argv() == ["--model", "m.gguf", "--dtype", "bfloat16", "--device-map", "auto", "--trust-remote-code"]


def test_load_names_and_times_the_model(tiny_model_dirs):
    timings: dict[str, float] = {}
    model = ModelSpec(source=str(tiny_model_dirs["gemma3"]), name="tiny gemma").load_timed(timings)
    assert model.name == "tiny gemma" and timings["load"] > 0


def test_unique_name():
    assert unique_name("m", set()) == "m"
    assert unique_name("m", {"m", "m (2)"}) == "m (3)"


def test_a_loaded_model_keeps_its_dtype(tiny_model_dirs):
    from layerscope.models import load_model

    model = load_model(str(tiny_model_dirs["llama"]), dtype="bfloat16")
    assert ModelSpec.of(model) == ModelSpec(str(tiny_model_dirs["llama"]), dtype="bfloat16")
