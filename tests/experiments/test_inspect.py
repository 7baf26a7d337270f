"""inspect (seed 001, first half) against Hugging Face's own hidden states and logits."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

import layerscope
from layerscope.analysis.similarity import compare
from layerscope.capture.logit_lens import lens_logits
from layerscope.experiment import ConfigError
from layerscope.experiments.inspect import InspectConfig, arithmetic_answer, inspect
from layerscope.model_spec import ModelSpec

PROMPTS = ["5+2=", "3+4=", "9-2=", "2*3="]


def _hf(model, prompt):
    ids = torch.tensor([model.encode(prompt)])
    with torch.no_grad():
        return model.module(input_ids=ids, output_hidden_states=True)


def test_residuals_equal_hf_hidden_states(tiny):
    result = inspect(PROMPTS[:2], model=tiny)
    for p, prompt in enumerate(PROMPTS[:2]):
        hidden = _hf(tiny, prompt).hidden_states
        # rows embed, 0..n-2 are HF's hidden_states[0..n-1]; the last row ("norm") is HF's last entry.
        for i in range(tiny.n_layers):
            np.testing.assert_allclose(result.residuals[p, i], hidden[i][0, -1].numpy(), atol=1e-5, rtol=1e-5)
        np.testing.assert_allclose(result.residuals[p, -1], hidden[-1][0, -1].numpy(), atol=1e-5, rtol=1e-5)
    n = tiny.n_layers
    assert result.layer_names == ["embed", *map(str, range(n)), "norm"]
    first = result.lens[result.lens["prompt_index"] == 0]
    assert list(first["layer"]) == result.layer_names and list(first["depth"]) == list(range(n + 2))


def test_logit_lens_at_the_last_layer_equals_model_logits(tiny):
    result = inspect(PROMPTS[:1], model=tiny, target="7")
    logits = _hf(tiny, PROMPTS[0]).logits[0, -1]
    before_norm = lens_logits(tiny, result.residuals[0, -2])  # after the last block, normed by the lens
    after_norm = lens_logits(tiny, result.residuals[0, -1], normed=True)
    torch.testing.assert_close(before_norm, logits, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(after_norm, logits, atol=1e-4, rtol=1e-4)
    last = result.lens[result.lens["layer"] == "norm"].iloc[0]
    assert last["top1"] == tiny.decode([int(logits.argmax())])
    target_id = tiny.encode("7", bos=False)[0]
    assert last["target_rank"] == 1 + int((logits > logits[target_id]).sum())  # 1 = top
    assert last["target_prob"] == pytest.approx(float(torch.softmax(logits, -1)[target_id]), rel=1e-4)


def test_similarity_equals_numpy_on_captured_vectors(tiny_models):
    model = tiny_models["gemma2"]
    result = inspect(PROMPTS, model=model)
    target_rows = result.similarity[result.similarity["kind"] == "target"]
    first = target_rows[target_rows["prompt"] == "5+2="]
    embed_7 = model.parts.embed(torch.tensor([[model.encode("7", bos=False)[0]]]))[0, 0].detach().numpy()
    expected = compare(result.residuals[0], embed_7)
    np.testing.assert_allclose(first[["cosine", "l1", "l2", "max_abs_diff"]].to_numpy(), expected.to_numpy(), rtol=1e-6)
    assert list(first["layer"]) == result.layer_names and list(first["depth"]) == list(range(model.n_layers + 2))
    pairs = result.similarity[(result.similarity["kind"] == "pair")]
    assert len(pairs) == 6 * len(result.layer_names)  # 4 prompts -> 6 pairs, every layer


def test_phases_and_matrices_with_several_prompts(tiny_models):
    result = inspect(PROMPTS, model=tiny_models["llama"])
    n = tiny_models["llama"].n_layers + 1
    assert result.matrices["linear CKA"].shape == (n, n)
    covered = [i for a, b in result.phases.bounds for i in range(a, b + 1)]
    assert covered == list(range(n))
    assert result.phases.describe().startswith("embed")
    assert result.phase_layers == result.layer_names[:-1]


def test_two_sources_of_one_model_agree(tiny_model_dirs):
    a = layerscope.load_model(tiny_model_dirs["qwen3"])
    b = layerscope.load_model(tiny_model_dirs["qwen3"])
    result = inspect(PROMPTS, model=a, compare_model=b)
    np.testing.assert_allclose(result.comparison["mean_cosine"], 1.0, atol=1e-6)
    np.testing.assert_allclose(result.comparison["max_abs_diff"], 0.0, atol=1e-6)
    assert list(result.comparison["layer"]) == result.layer_names
    assert result.model_names == [a.name, f"{a.name} (2)"]


def test_compare_model_from_a_spec_is_loaded(tiny_model_dirs, tiny_models):
    spec = ModelSpec(source=str(tiny_model_dirs["qwen3"]))
    result = inspect(PROMPTS[:2], model=tiny_models["qwen3"], compare_model=spec)
    np.testing.assert_allclose(result.comparison["max_abs_diff"], 0.0, atol=1e-6)
    assert "load" in result.timings and len(result.models) == 2


def test_save_writes_the_run_directory(tiny_models, tmp_path):
    out = tmp_path / "run"
    model = tiny_models["gemma3"]
    result = inspect(PROMPTS, model=model, out=out)
    names = {p.name for p in out.iterdir()}
    assert {
        "residuals.npy",
        "heatmap.html",
        "heatmap.png",
        "similarity.csv",
        "logit_lens.csv",
        "logit_lens.html",
        "logit_lens.png",
        "phases.json",
        "layers.html",
        "layers.png",
        "run.json",
    } <= names
    assert not [n for n in names if n.endswith(".part")]
    phases = json.loads((out / "phases.json").read_text())
    assert phases["phases"][0]["first"] == "embed" and phases["phases"][0]["first_depth"] == 0
    assert phases["phases"][-1]["last"] == str(model.n_layers - 1)
    assert phases["summary"] == result.phases.describe()
    lens = pd.read_csv(out / "logit_lens.csv", keep_default_na=False)
    assert list(lens["layer"][: model.n_layers + 2]) == ["embed", *map(str, range(model.n_layers)), "norm"]
    assert list(lens["depth"][: model.n_layers + 2]) == list(range(model.n_layers + 2))
    assert (pd.to_numeric(lens["target_rank"]) >= 1).all()
    np.testing.assert_array_equal(np.load(out / "residuals.npy"), result.residuals)
    record = json.loads((out / "run.json").read_text())
    assert record["experiment"] == "inspect" and record["layers"] == result.layer_names
    assert record["models"][0]["fingerprint"] == model.fingerprint
    assert record["command"][:2] == ["layerscope", "inspect"] and record["command"].count("--prompt") == 4


def test_compare_csv_names_layers(tiny_model_dirs, tmp_path):
    a = layerscope.load_model(tiny_model_dirs["llama"])
    out = tmp_path / "cmp"
    inspect(PROMPTS[:1], model=a, compare_model=str(tiny_model_dirs["llama"]), out=out)
    table = pd.read_csv(out / "compare.csv", keep_default_na=False)
    assert list(table["layer"]) == ["embed", *map(str, range(a.n_layers)), "norm"]
    assert list(table["depth"]) == list(range(a.n_layers + 2))


def test_figures_label_rows_with_layer_names(tiny_models):
    from matplotlib.figure import Figure

    result = inspect(PROMPTS[:3], model=tiny_models["llama"])
    names = result.layer_names
    heat = result.figure()
    assert list(heat.data[0].y) == names and heat.layout.yaxis.type == "category"
    assert list(result.lens_figure().data[0].y) == names
    assert list(result.phases_figure().data[0].x) == names[:-1]
    for make in (result.heatmap_png, result.lens_png, result.phases_png):
        fig = make()
        assert type(fig) is Figure
    ticks = [t.get_text() for t in result.lens_png().axes[0].get_yticklabels()]
    assert ticks == names


def test_arithmetic_answers():
    assert [arithmetic_answer(p) for p in ["5+2=", "9-2=", "2*3=", "8/4=", "7/2=", "2-5=", "hello"]] == [
        "7",
        "7",
        "6",
        "2",
        None,
        "-3",
        None,
    ]


# ----- the config ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"top_k": 0}, "top_k=0 must be at least 1"),
        ({"phases": 0}, "phases=0 must be at least 1"),
        ({"prompts": ("5+2=", "")}, "prompts='' is empty"),
        ({"prompts": ("a", "b", "c"), "target": ("x", "y")}, "target=('x', 'y') gives 2 targets for 3 prompts"),
        ({"prompts_file": "/no/such/prompts.txt"}, "prompts_file='/no/such/prompts.txt' does not exist"),
        ({"model": ModelSpec(dtype="int3")}, "dtype='int3' is not supported"),
    ],
)
def test_bad_values_from_python_name_the_parameter(kwargs, message):
    with pytest.raises(ConfigError) as caught:
        InspectConfig(**kwargs).validate()
    assert str(caught.value).startswith(message) and "--" not in str(caught.value)


def test_bad_value_from_the_python_api_names_the_parameter(tiny_models):
    with pytest.raises(ConfigError, match=r"^top_k=0 must be at least 1"):
        inspect("5+2=", model=tiny_models["llama"], top_k=0)


def test_prompts_file_follows_the_prompts(tmp_path):
    path = tmp_path / "prompts.txt"
    path.write_text("1+1=\n\n2+2=\n")
    assert InspectConfig(prompts=("5+2=",), prompts_file=str(path)).all_prompts() == ["5+2=", "1+1=", "2+2="]
    assert InspectConfig(prompts_file=str(path)).all_prompts() == ["1+1=", "2+2="]
    assert InspectConfig().all_prompts() == ["5+2="]


@pytest.mark.default_model
def test_default_model_lens_top1_equals_hf_argmax(default_model):
    result = inspect(["2*3="], model=default_model)
    out = _hf(default_model, "2*3=")
    logits = out.logits[0, -1]
    last = result.lens[result.lens["layer"] == "norm"].iloc[0]
    assert last["top1"] == default_model.decode([int(logits.argmax())])
    target_id = result.tokens[0].target_id
    assert last["target_rank"] == 1 + int((logits > logits[target_id]).sum())
    np.testing.assert_allclose(result.residuals[0, -1], out.hidden_states[-1][0, -1].numpy(), atol=1e-4)


def _rms_rows(values):
    rms = np.sqrt((values.astype(np.float64) ** 2).mean(axis=1))
    return values / np.where(rms > 0, rms, 1.0)[:, None], rms


@pytest.mark.parametrize("count", [1, 4, 16])
def test_heatmap_panels_scale_with_the_prompt_count(tiny_models, count):
    from layerscope.experiments.tour import ARITHMETIC_PROMPTS
    from layerscope.render.heatmap import MAX_PANELS

    result = inspect(list(ARITHMETIC_PROMPTS[:count]), model=tiny_models["llama"])
    fig = result.figure()
    heats = [t for t in fig.data if t.coloraxis == "coloraxis"]
    strips = [t for t in fig.data if t.coloraxis == "coloraxis2"]
    assert len(heats) == len(strips) == count
    expected_max = np.percentile(np.abs(np.stack([_rms_rows(v)[0] for v in result.residuals])), 99)
    assert (
        fig.layout.coloraxis.cmax == pytest.approx(expected_max)
        and fig.layout.coloraxis.cmin == -fig.layout.coloraxis.cmax
    )
    for heat, strip, values in zip(heats, strips, result.residuals):
        normed, rms = _rms_rows(values)
        np.testing.assert_allclose(heat.z, normed, rtol=1e-6)
        np.testing.assert_allclose(strip.z[:, 1], rms, rtol=1e-6)
        np.testing.assert_allclose(strip.z[:, 0], values.mean(axis=1), rtol=1e-5, atol=1e-7)
        assert list(heat.y) == result.layer_names == ["embed", *map(str, range(result.models[0]["n_layers"])), "norm"]
    assert fig.layout.yaxis.type == "category"
    if count > MAX_PANELS:
        (menu,) = fig.layout.updatemenus
        assert len(menu.buttons) == count
        for index, button in enumerate(menu.buttons):
            shown = [t for t, on in zip(fig.data, button.args[0]["visible"]) if on]
            np.testing.assert_allclose(shown[0].z, _rms_rows(result.residuals[index])[0], rtol=1e-6)
            assert ARITHMETIC_PROMPTS[index] in button.label
    else:
        assert not fig.layout.updatemenus
    png = result.heatmap_png()
    captions = [t.get_text() for t in png.texts]
    more = count - min(count, MAX_PANELS)
    assert any(f"{more} more prompts in the HTML figure (heatmap.html)" in c for c in captions) == bool(more)
    titled = [ax for ax in png.axes if ax.get_title()]
    assert len(titled) == min(count, MAX_PANELS)
    assert [t.get_text() for t in titled[0].get_yticklabels()] == result.layer_names


def test_raw_heatmap_draws_raw_values(tiny_models):
    result = inspect(PROMPTS[:2], model=tiny_models["llama"], raw=True)
    heats = [t for t in result.figure().data if t.coloraxis == "coloraxis"]
    np.testing.assert_array_equal(heats[1].z, result.residuals[1])
    assert "raw" in result.heatmap_title()
