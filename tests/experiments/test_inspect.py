"""inspect (seed 001, first half) against Hugging Face's own hidden states and logits."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import layerscope
from layerscope.analysis.similarity import compare
from layerscope.capture.logit_lens import lens_logits
from layerscope.cli import main
from layerscope.experiments.inspect import arithmetic_answer, inspect

PROMPTS = ["5+2=", "3+4=", "9-2=", "2*3="]


def _hf(model, prompt):
    ids = torch.tensor([model.encode(prompt)])
    with torch.no_grad():
        return model.module(input_ids=ids, output_hidden_states=True)


def test_residuals_equal_hf_hidden_states(tiny):
    result = inspect(PROMPTS[:2], model=tiny)
    for p, prompt in enumerate(PROMPTS[:2]):
        hidden = _hf(tiny, prompt).hidden_states
        # rows embed..n_layers-1 are HF's hidden_states[0..n-1]; the last row ("norm") is HF's last entry.
        for i in range(tiny.n_layers):
            np.testing.assert_allclose(result.residuals[p, i], hidden[i][0, -1].numpy(), atol=1e-5, rtol=1e-5)
        np.testing.assert_allclose(result.residuals[p, -1], hidden[-1][0, -1].numpy(), atol=1e-5, rtol=1e-5)
    assert result.layer_labels[0] == "0" and result.layer_labels[-1] == "norm"
    assert len(result.layer_labels) == tiny.n_layers + 2


def test_logit_lens_at_the_last_layer_equals_model_logits(tiny):
    result = inspect(PROMPTS[:1], model=tiny, targets="7")
    logits = _hf(tiny, PROMPTS[0]).logits[0, -1]
    before_norm = lens_logits(tiny, result.residuals[0, -2])  # after the last layer, normed by the lens
    after_norm = lens_logits(tiny, result.residuals[0, -1], normed=True)
    torch.testing.assert_close(before_norm, logits, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(after_norm, logits, atol=1e-4, rtol=1e-4)
    last = result.lens[result.lens["layer"] == "norm"].iloc[0]
    assert last["top1"] == tiny.decode([int(logits.argmax())])
    target_id = tiny.encode("7", bos=False)[0]
    assert last["target_rank"] == int((logits > logits[target_id]).sum())
    assert last["target_prob"] == pytest.approx(float(torch.softmax(logits, -1)[target_id]), rel=1e-4)


def test_similarity_equals_numpy_on_captured_vectors(tiny_models):
    model = tiny_models["gemma2"]
    result = inspect(PROMPTS, model=model)
    target_rows = result.similarity[result.similarity["kind"] == "target"]
    first = target_rows[target_rows["prompt"] == "5+2="]
    embed_7 = model.parts.embed(torch.tensor([[model.encode("7", bos=False)[0]]]))[0, 0].detach().numpy()
    expected = compare(result.residuals[0], embed_7)
    np.testing.assert_allclose(first[["cosine", "l1", "l2", "max_abs_diff"]].to_numpy(), expected.to_numpy(), rtol=1e-6)
    pairs = result.similarity[(result.similarity["kind"] == "pair")]
    assert len(pairs) == 6 * len(result.layer_labels)  # 4 prompts -> 6 pairs, every layer


def test_phases_and_matrices_with_several_prompts(tiny_models):
    result = inspect(PROMPTS, model=tiny_models["llama"])
    n = tiny_models["llama"].n_layers + 1
    assert result.matrices["linear CKA"].shape == (n, n)
    covered = [i for a, b in result.phases.bounds for i in range(a, b + 1)]
    assert covered == list(range(n))


def test_two_sources_of_one_model_agree(tiny_model_dirs):
    a = layerscope.load_model(tiny_model_dirs["qwen3"])
    b = layerscope.load_model(tiny_model_dirs["qwen3"])
    result = inspect(PROMPTS, model=a, compare_model=b)
    np.testing.assert_allclose(result.comparison["mean_cosine"], 1.0, atol=1e-6)
    np.testing.assert_allclose(result.comparison["max_abs_diff"], 0.0, atol=1e-6)


def test_save_writes_the_run_directory(tiny_models, tmp_path):
    out = tmp_path / "run"
    inspect(PROMPTS, model=tiny_models["gemma3"], out=out)
    names = {p.name for p in out.iterdir()}
    assert {"residuals.npy", "heatmap.html", "heatmap.png", "similarity.csv", "logit_lens.csv", "logit_lens.html",
            "logit_lens.png", "phases.json", "layers.html", "layers.png", "run.json"} <= names
    phases = json.loads((out / "phases.json").read_text())
    assert phases["phases"][0]["first"] == "0"


def test_arithmetic_answers():
    assert [arithmetic_answer(p) for p in ["5+2=", "9-2=", "2*3=", "8/4=", "7/2=", "2-5=", "hello"]] == [
        "7", "7", "6", "2", None, "-3", None]


@pytest.mark.default_model
def test_default_model_lens_top1_equals_hf_argmax(default_model):
    result = inspect(["2*3="], model=default_model)
    logits = _hf(default_model, "2*3=").logits[0, -1]
    last = result.lens[result.lens["layer"] == "norm"].iloc[0]
    assert last["top1"] == default_model.decode([int(logits.argmax())])
    np.testing.assert_allclose(result.residuals[0, -1], _hf(default_model, "2*3=").hidden_states[-1][0, -1].numpy(), atol=1e-4)


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--prompt", "5+2=", "--position", "9"], "position 9 is outside prompt '5+2=' of"),
        (["--prompt", "  "], "empty prompt '  '"),
        (["--prompt", "hello", "--target", ""], "unknown target token ''"),
        (["--prompt", "a", "--prompt", "b", "--prompt", "c", "--target", "x", "--target", "y"], "2 targets for 3 prompts"),
    ],
)
def test_cli_bad_input(extra, message, tiny_model_dirs, capsys):
    code = main(["--quiet", "inspect", "--model", str(tiny_model_dirs["llama"]), *extra])
    err = capsys.readouterr().err
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1


def test_cli_writes_heatmap(tiny_model_dirs, tmp_path, capsys):
    code = main(["--quiet", "inspect", "--model", str(tiny_model_dirs["olmo3"]), "--prompt", "5+2=", "--out", str(tmp_path / "r")])
    assert code == 0 and capsys.readouterr().out.strip().endswith("heatmap.html")
