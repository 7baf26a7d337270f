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
    from layerscope.models.loading import load_spec_timed

    model = load_spec_timed(ModelSpec(source=str(tiny_model_dirs["gemma3"]), name="tiny gemma"), timings)
    assert model.name == "tiny gemma" and timings["load"] > 0


def test_unique_name():
    assert unique_name("m", set()) == "m"
    assert unique_name("m", {"m", "m (2)"}) == "m (3)"


def test_a_loaded_model_keeps_its_dtype(tiny_model_dirs):
    from layerscope.models import load_model

    model = load_model(str(tiny_model_dirs["llama"]), dtype="bfloat16")
    assert ModelSpec.of(model) == ModelSpec(str(tiny_model_dirs["llama"]), dtype="bfloat16")


def test_placement_options_travel_in_argv_and_value():
    spec = ModelSpec("org/big", device_map="auto", max_memory={0: "20GiB", "cpu": "30GiB"}, offload_dir="off")
    assert spec.max_memory == "0=20GiB,cpu=30GiB"  # a dict is kept as its command-line text
    assert spec.option_argv() == ["--device-map", "auto", "--max-memory", "0=20GiB,cpu=30GiB", "--offload-dir", "off"]
    assert spec.argv()[:2] == ["--model", "org/big"]
    assert spec == ModelSpec("org/big", device_map="auto", max_memory="0=20GiB,cpu=30GiB", offload_dir="off")
    assert ModelSpec("m").option_argv() == []  # nothing added for a model on one device
    assert ModelSpec(**{k: getattr(spec, k) for k in spec.__dataclass_fields__}) == spec


def test_max_memory_parses_to_accelerates_dict():
    from layerscope.model_spec import parse_max_memory

    assert parse_max_memory("cpu=2GiB") == {"cpu": 2 << 30}
    assert parse_max_memory("0=20GiB, cpu=30GB") == {0: 20 << 30, "cpu": 30 * 10**9}
    assert parse_max_memory("cuda:1=512MiB,mps=1e9") == {1: 512 << 20, "mps": 10**9}
    assert parse_max_memory({"cpu": "1.5GiB"}) == {"cpu": 3 << 29}
    assert parse_max_memory(None) is None
    for bad, says in [
        ("cpu", "write DEVICE=SIZE"),
        ("gpu=2GiB", "device 'gpu'"),
        ("disk=2GiB", "disk takes what does not fit"),
        ("cpu=lots", "'lots', not a size"),
        ("cpu=0", "above 0"),
        ("cpu=1GiB,cpu=2GiB", "twice"),
        ("", "is empty"),
        ("cpu=-1GiB", "above 0"),
    ]:
        with pytest.raises(ValueError, match=says):
            parse_max_memory(bad)
    with pytest.raises(LayerscopeError, match="max_memory 'cpu=x'"):
        ModelSpec(max_memory="cpu=x").validate()


def test_max_memory_and_offload_dir_imply_accelerate_placement(tmp_path):
    from layerscope.models.loading import _placement

    assert _placement(None, None, None) is None  # one device: transformers' own loading
    assert _placement(None, None, str(tmp_path)) == {"device_map": "auto", "offload_folder": str(tmp_path)}
    placed = _placement("sequential", "cpu=1GiB", str(tmp_path))
    assert placed == {"device_map": "sequential", "offload_folder": str(tmp_path), "max_memory": {"cpu": 1 << 30}}
    temporary = _placement(None, {"cpu": "1GiB"}, None)["offload_folder"]  # removed when the process ends
    assert temporary.startswith(str(layerscope_cache() / "offload"))


def layerscope_cache():
    from layerscope.cache import cache_root

    return cache_root()


def test_models_given_pairs_loaded_models_with_specs(tiny_models):
    from layerscope.models.loading import models_given

    model = tiny_models["llama"]
    specs = (ModelSpec(), ModelSpec("b"), ModelSpec("c"))
    assert models_given(specs, None) == [None, None, None]
    assert models_given(specs, model) == [model, None, None]  # one loaded model is the first spec's
    assert models_given(specs, [None, model, None]) == [None, model, None]
    with pytest.raises(LayerscopeError, match="2 models given for 3 model specs"):
        models_given(specs, [model, model])
    with pytest.raises(LayerscopeError, match="'gpt2' is not a loaded model"):
        models_given(specs, [None, "gpt2", None])


def test_a_named_source_text_names_the_model_in_python_as_on_the_command_line(tmp_path, monkeypatch):
    assert ModelSpec.of("q8=runs/q8") == ModelSpec("runs/q8", name="q8")
    assert ModelSpec.of("small=default") == ModelSpec(name="small")
    assert ModelSpec.of("q8=runs/q8", name="other").name == "other"  # an explicit name wins
    monkeypatch.chdir(tmp_path)
    assert ModelSpec.of("a=b") == ModelSpec("b", name="a")
    (tmp_path / "a=b").mkdir()
    assert ModelSpec.of("a=b") == ModelSpec("a=b")  # an existing path with '=' is a source
    with pytest.raises(LayerscopeError, match="no source after '='"):
        ModelSpec.of("q8=")


def test_first_line_of_a_library_error_carries_the_line_a_colon_announces():
    from layerscope.models.broken import first_line

    assert first_line(ValueError("Class validation error:\n    ValueError: heads (7) do not divide 64\nmore")) == (
        "Class validation error: ValueError: heads (7) do not divide 64"
    )
    assert first_line(ValueError("\n  bad value\nsecond")) == "bad value"
    assert first_line(ValueError("ends with a colon:")) == "ends with a colon:"
    assert first_line(KeyError()) == "KeyError"


def test_a_model_value_carries_its_own_options():
    from layerscope.model_spec import parse_model_text

    assert parse_model_text("bf16=default@dtype=bfloat16,device-map=auto") == (
        "bf16",
        "default",
        {"dtype": "bfloat16", "device_map": "auto"},
    )
    assert parse_model_text("m.gguf@max_memory=cpu=2GiB,0=1GiB,trust_remote_code") == (
        None,
        "m.gguf",
        {"max_memory": "cpu=2GiB,0=1GiB", "trust_remote_code": True},
    )
    assert parse_model_text("user@host/model") == (None, "user@host/model", {})  # an '@' of the source
    assert ModelSpec.of("b=x.gguf@dtype=bfloat16") == ModelSpec("x.gguf", name="b", dtype="bfloat16")
    for bad, says in [
        ("m@dtpye=bfloat16", "model option 'dtpye'"),
        ("m@dtype=", "no value for model option 'dtype'"),
        ("@dtype=bfloat16", "no source before '@'"),
        ("m@dtype=float16,dtype=bfloat16", "twice"),
    ]:
        with pytest.raises(ValueError, match=says):
            parse_model_text(bad)


def test_an_existing_path_with_an_at_sign_is_a_source(tmp_path):
    from layerscope.model_spec import parse_model_text

    path = tmp_path / "m@dtype=bfloat16.gguf"
    path.write_bytes(b"")
    assert parse_model_text(str(path)) == (None, str(path), {})


def test_specs_argv_gives_each_model_its_differing_options():
    from layerscope.model_spec import specs_argv

    same = [ModelSpec("a", dtype="bfloat16"), ModelSpec("b", dtype="bfloat16")]
    assert specs_argv(same) == ["--model", "a", "--model", "b", "--dtype", "bfloat16"]
    pair = [ModelSpec(None, name="f32"), ModelSpec(None, name="bf16", dtype="bfloat16", device_map="auto")]
    assert specs_argv(pair) == ["--model", "f32=default", "--model", "bf16=default@dtype=bfloat16,device_map=auto"]


def test_the_loading_line_uses_the_name_given(tiny_model_dirs, capsys):
    from layerscope import progress
    from layerscope.models.loading import load_spec

    progress.set_enabled(True)
    try:
        load_spec(ModelSpec(source=str(tiny_model_dirs["llama"]), name="q8gguf"))
    finally:
        progress.set_enabled(False)
    assert "Loading q8gguf" in capsys.readouterr().err
