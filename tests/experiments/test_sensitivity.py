"""``sensitivity``: each restored part's and each restored block output's numbers equal a model built independently
(the quantized copy loaded by transformers, the reference's tensors copied in with plain torch), KL and agreement
equal numpy's, the recipe and its file, and bad input."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

import layerscope
from layerscope.analysis.sensitivity import greedy_order, kl_divergence, mean_interval
from layerscope.capture.restoration import RestorationEngine
from layerscope.cli import main
from layerscope.convert.quantize import QuantizeConfig, quantize_run
from layerscope.convert.recipe import read_recipe

pytest.importorskip("mlx.core")

PROMPTS = ["red blue green", "3+4=7", "When John and Mary went", "The word is", "one two three four", "5+2="]


@pytest.fixture(scope="module")
def pair(tiny_model_dirs, tmp_path_factory):
    """The tiny gemma3 (tied embeddings) and its MLX 2-bit copy written by ``quantize``, and a prompts file."""
    root = tmp_path_factory.mktemp("sensitivity")
    source = tiny_model_dirs["gemma3"]
    quantize_run(QuantizeConfig(source=str(source), to="mlx", bits=2), root / "q2")
    (root / "prompts.txt").write_text("\n".join(PROMPTS) + "\n")
    return source, root / "q2", root / "prompts.txt"


def _log_probs(module, model, prompts) -> np.ndarray:
    """``(prompt, vocab)`` float64 log-probabilities at each prompt's last token, each prompt run alone."""
    rows = []
    with torch.no_grad():
        for text in prompts:
            logits = module(torch.tensor([model.encode(text)])).logits[0, -1]
            rows.append(torch.log_softmax(logits.float(), -1).double().numpy())
    return np.stack(rows)


def _independent(q_dir, reference: dict, names=()):
    """The quantized copy loaded by transformers with ``names`` copied from ``reference`` (``{name: tensor}``, the
    reference's state) with plain torch."""
    module = layerscope.load_model(str(q_dir)).module
    ref = reference
    params = dict(module.named_parameters())
    with torch.no_grad():
        for name in names:
            params[name].copy_(ref[name])
    return module


def test_each_restored_part_equals_an_independent_model(pair):
    source, q_dir, _ = pair
    reference = layerscope.load_model(str(source))
    ref_lp = _log_probs(reference.module, reference, PROMPTS)
    quantized = layerscope.load_model(str(q_dir))
    values = {n: p.detach() for n, p in quantized.module.named_parameters()}
    values = {n: v for n, v in values.items() if not torch.equal(v, dict(reference.module.named_parameters())[n])}
    ids = [reference.encode(t) for t in PROMPTS]
    state = {n: p.detach().clone() for n, p in reference.module.named_parameters()}
    with RestorationEngine(reference, values, ids, batch_size=4) as engine:
        q_lp = _log_probs(quantized.module, reference, PROMPTS)
        np.testing.assert_allclose(engine.quantized_scores.kl, kl_divergence(ref_lp, q_lp), atol=2e-6)
        assert list(engine.quantized_scores.top1) == list(q_lp.argmax(-1))
        assert {p.label for p in engine.parts} >= {"embed", "0.q_proj", "2.down_proj"}
        for part in engine.parts:
            got = engine.restore(part)
            lp = _log_probs(_independent(q_dir, state, part.names), reference, PROMPTS)
            np.testing.assert_allclose(got.kl, kl_divergence(ref_lp, lp), atol=2e-6, err_msg=part.label)
            np.testing.assert_array_equal(got.top1, lp.argmax(-1))
            np.testing.assert_array_equal(got.agrees, lp.argmax(-1) == ref_lp.argmax(-1))
    # the reference's own weights are back
    np.testing.assert_allclose(_log_probs(reference.module, reference, PROMPTS), ref_lp, atol=0)


def test_each_restored_block_output_equals_an_independent_patch(pair):
    source, q_dir, _ = pair
    reference = layerscope.load_model(str(source))
    ref_lp = _log_probs(reference.module, reference, PROMPTS)
    outputs = {}  # block -> per prompt, the reference's output of that block (-1: the embedding output)
    with torch.no_grad():
        for i, text in enumerate(PROMPTS):
            handles = [reference.layers[0].register_forward_pre_hook(
                lambda m, a, kw, i=i: outputs.setdefault(-1, {}).__setitem__(i, (a[0] if a else kw["hidden_states"]).clone()),
                with_kwargs=True)]  # fmt: skip
            for k, layer in enumerate(reference.layers):
                handles.append(layer.register_forward_hook(
                    lambda m, a, out, k=k, i=i: outputs.setdefault(k, {}).__setitem__(
                        i, (out[0] if isinstance(out, tuple) else out).clone())))  # fmt: skip
            reference.module(torch.tensor([reference.encode(text)]))
            for h in handles:
                h.remove()
    quantized = layerscope.load_model(str(q_dir))
    ref_params = dict(reference.module.named_parameters())
    values = {n: p.detach() for n, p in quantized.module.named_parameters() if not torch.equal(p, ref_params[n])}
    ids = [reference.encode(t) for t in PROMPTS]
    with RestorationEngine(reference, values, ids, batch_size=3) as engine:
        for block in range(-1, reference.n_layers):
            got = engine.restore_output(block)
            target = quantized.layers[block + 1] if block + 1 < quantized.n_layers else quantized.final_norm
            rows = []
            with torch.no_grad():
                for i, text in enumerate(PROMPTS):
                    hidden = outputs[block][i]

                    def feed(m, a, kw, hidden=hidden):
                        return ((hidden, *a[1:]), kw) if a else (a, {**kw, "hidden_states": hidden})

                    handle = target.register_forward_pre_hook(feed, with_kwargs=True)
                    logits = quantized.module(torch.tensor([reference.encode(text)])).logits[0, -1]
                    handle.remove()
                    rows.append(torch.log_softmax(logits.float(), -1).double().numpy())
            lp = np.stack(rows)
            np.testing.assert_allclose(got.kl, kl_divergence(ref_lp, lp), atol=2e-6, err_msg=str(block))
            np.testing.assert_array_equal(got.top1, lp.argmax(-1))


def test_each_block_with_its_weights_restored_equals_an_independent_model(pair):
    """The activation view's other side: every part of a block restored at once (the embedding: its own part)."""
    source, q_dir, prompts = pair
    reference = layerscope.load_model(str(source))
    ref_lp = _log_probs(reference.module, reference, PROMPTS)
    state = {n: p.detach().clone() for n, p in reference.module.named_parameters()}
    result = layerscope.sensitivity(reference, quantized=str(q_dir), text=prompts)
    views = result.activations.set_index("layer")
    quantized = dict(layerscope.load_model(str(q_dir)).module.named_parameters())
    differ = [n for n, v in quantized.items() if not torch.equal(v, state[n])]
    for layer, prefix in [("embed", "model.embed_tokens."), *((str(k), f"model.layers.{k}.") for k in range(3))]:
        names = [n for n in differ if n.startswith(prefix) and n.endswith("_proj.weight") or n == prefix + "weight"]
        assert names, layer
        lp = _log_probs(_independent(q_dir, state, names), reference, PROMPTS)
        kl = kl_divergence(ref_lp, lp)
        assert views.loc[layer, "weights_kl"] == pytest.approx(kl.mean(), abs=2e-6), layer
        assert views.loc[layer, "weights_top1_agreement"] == (lp.argmax(-1) == ref_lp.argmax(-1)).mean()
        total = result.numbers["quantized_kl"]
        assert views.loc[layer, "weights_share_removed"] == pytest.approx((total - kl.mean()) / total, abs=1e-5)


def test_kl_and_interval_equal_numpy():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(2, 5, 7))
    lp = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    expected = [sum(np.exp(a) * (a - b)) for a, b in zip(lp[0], lp[1])]
    np.testing.assert_allclose(kl_divergence(lp[0], lp[1]), expected)
    values = rng.random(20)
    mean, low, high = mean_interval(values, seed=3)
    draws = np.random.default_rng(3).integers(0, 20, size=(1000, 20))
    assert mean == values.mean()
    assert (low, high) == tuple(np.quantile(values[draws].mean(1), [0.025, 0.975]))
    assert np.isnan(mean_interval(values[:4])[1])


def test_greedy_takes_the_most_kl_per_byte_within_the_budget():
    removed, cost = np.array([0.5, 0.1, 0.4, -0.2, 0.3]), np.array([10, 1, 2, 1, 6])
    assert greedy_order(removed, cost) == [2, 1, 0, 4]  # 0.2/byte, 0.1, 0.05, 0.05 (stable); the harmful one never
    assert greedy_order(removed, cost, budget=5) == [2, 1]
    assert greedy_order(removed, cost, budget=9) == [2, 1, 4]  # the 10-byte part does not fit
    assert greedy_order(removed, cost, budget=0) == []


def test_the_run_writes_a_recipe_that_quantize_reads(pair, tmp_path, capsys):
    source, q_dir, prompts = pair
    out = tmp_path / "run"
    code = main(["sensitivity", "--model", str(source), "--quantized", str(q_dir), "--text", str(prompts),
                 "--budget", "10%", "--out", str(out)])  # fmt: skip
    assert code == 0
    printed = capsys.readouterr().out
    recipe = read_recipe(out / "recipe.json")
    assert json.loads((out / "recipe.json").read_text())["llama_cpp_tensor_type"][0] in printed
    assert (recipe.bits, recipe.group_size) == (2, 64) and recipe.overrides
    result = layerscope.load_run(out)
    notes = recipe.notes
    chosen = result.chosen
    assert list(chosen["module"]) == [o.module for o in recipe.overrides]
    assert chosen["extra_bytes"].sum() <= notes["budget_bytes"] == int(0.1 * result.numbers["uniform_bytes"])
    assert set(result.curve["method"]) == {"uniform", "recipe"}
    uniform = result.curve[result.curve["method"] == "uniform"]
    assert list(uniform["label"]) == ["2-bit", "3-bit", "4-bit", "5-bit", "6-bit", "8-bit"]
    assert uniform["kl"].iloc[0] == pytest.approx(result.numbers["quantized_kl"])
    assert uniform["kl"].iloc[-1] < uniform["kl"].iloc[0]
    assert result.prompts["recipe_kl"].mean() == pytest.approx(notes["recipe_kl"])
    assert set(result.parts["kind"]) == {"embed", "q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj",
                                         "down_proj"}  # fmt: skip
    assert list(result.activations["layer"]) == ["embed", "0", "1", "2"]
    assert (
        "too few" not in result.findings()["sensitivity_parts"]
        and "6 prompts" in result.findings()["sensitivity_parts"]
    )
    for stem in ("sensitivity_parts", "sensitivity_curve"):
        assert (out / f"{stem}.html").is_file() and (out / f"{stem}.png").is_file()
    # the mixed file quantize writes from the recipe gives the KL the run measured for it
    mixed = quantize_run(QuantizeConfig(source=str(source), recipe=str(out / "recipe.json")), tmp_path / "mixed")
    reference = layerscope.load_model(str(source))
    ref_lp = _log_probs(reference.module, reference, PROMPTS)
    mixed_lp = _log_probs(layerscope.load_model(str(mixed.path)).module, reference, PROMPTS)
    assert kl_divergence(ref_lp, mixed_lp).mean() == pytest.approx(notes["recipe_kl"], abs=2e-6)
    assert notes["recipe_kl"] < notes["uniform_kl"]


def test_on_the_fly_quantization_equals_the_quantized_directory(pair):
    source, q_dir, prompts = pair
    reference = layerscope.load_model(str(source))
    given = layerscope.sensitivity(reference, quantized=str(q_dir), text=prompts, activations=False)
    fly = layerscope.sensitivity(reference, bits=2, text=prompts, activations=False)
    np.testing.assert_allclose(fly.parts["kl"], given.parts["kl"], atol=1e-9)


@pytest.fixture(scope="module")
def other_tokenizer(pair, tmp_path_factory):
    """The quantized copy with a tokenizer trained on other text."""
    from tokenizers import ByteLevelBPETokenizer
    from transformers import PreTrainedTokenizerFast

    _, q_dir, _ = pair
    out = shutil.copytree(q_dir, tmp_path_factory.mktemp("other") / "q", ignore=shutil.ignore_patterns("run.json"))
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(["zebra quartz"] * 5, vocab_size=300, special_tokens=["<pad>", "<eos>", "<bos>", "<unk>"])
    PreTrainedTokenizerFast(tokenizer_object=bpe._tokenizer, bos_token="<bos>", eos_token="<eos>",
                            pad_token="<pad>", unk_token="<unk>").save_pretrained(out)  # fmt: skip
    return out


@pytest.fixture(scope="module")
def other_shape(pair, tmp_path_factory):
    """A tiny gemma3 of the reference's parameter names, its MLP twice as wide, with the reference's tokenizer."""
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    source, _, _ = pair
    out = tmp_path_factory.mktemp("wide") / "q"
    config = AutoConfig.from_pretrained(source)
    config.intermediate_size *= 2
    AutoModelForCausalLM.from_config(config).save_pretrained(out)
    AutoTokenizer.from_pretrained(source).save_pretrained(out)
    return out


@pytest.mark.parametrize(
    "args, message",
    [
        (["--budget=-5%"], "--budget -5% is below zero"),
        (["--budget", "lots"], "--budget lots is not valid: budget 'lots' is not a budget"),
        (["--budget", "1.5bpw"], "--budget 1.5bpw is below the base's 2 bits per weight"),
        (["--budget", "100000%"], "--budget 100000% is above the reference's own size"),
        (["--budget", "80bpw"], "--budget 80bpw is above the reference's own size"),
        (["--bits", "7"], "--bits 7 is not supported by MLX"),
        (["--task", "nope"], "--task nope is not a built-in task"),
        (["--quantized", "{llama}"], "differ in parameters"),
        (["--quantized", "{other}"], "has another tokenizer than the reference"),
        (["--quantized", "{wide}"], "model.layers.0.mlp.gate_proj.weight is (256, 64) in the quantized model"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    pair, tiny_model_dirs, other_tokenizer, other_shape, tmp_path, capsys, args, message
):
    source, _, prompts = pair
    args = [a.format(llama=tiny_model_dirs["llama"], other=other_tokenizer, wide=other_shape) for a in args]
    argv = ["sensitivity", "--model", str(source), "--text", str(prompts), "--bits", "2", *args]
    code = main(["--quiet", *argv, "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and message in err, err
    assert "Traceback" not in err
