"""compare: CKA across models (any tokenizers), errors and next-token agreement against a reference."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

import layerscope
from layerscope.analysis.cka import linear_cka
from layerscope.cli.declared import parse
from layerscope.cli.main import main
from layerscope.experiment import ConfigError
from layerscope.experiments.compare import CompareConfig, compare
from layerscope.model_spec import ModelSpec

PROMPTS = ["5+2=", "3+4=", "9-2=", "2*3=", "The word is red", "John gave the bag to"]
WORDS = "red,green,blue,January,March,Paris,doctor,teacher"


@pytest.fixture(scope="module")
def other_tokenizer_dir(tmp_path_factory):
    """A tiny Gemma 3 with its own, smaller BPE vocabulary: the same words split otherwise."""
    import transformers
    from tiny_models import _corpus
    from tokenizers import ByteLevelBPETokenizer
    from transformers import AutoModelForCausalLM, PreTrainedTokenizerFast

    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(
        _corpus(), vocab_size=300, min_frequency=1, special_tokens=["<pad>", "<eos>", "<bos>", "<unk>"]
    )
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe._tokenizer, bos_token="<bos>", eos_token="<eos>", pad_token="<pad>", unk_token="<unk>"
    )
    config = transformers.Gemma3TextConfig(
        hidden_size=48, intermediate_size=96, num_hidden_layers=5, num_attention_heads=4, num_key_value_heads=2,
        head_dim=12, max_position_embeddings=256, vocab_size=len(tokenizer), pad_token_id=0, eos_token_id=1,
        bos_token_id=2, tie_word_embeddings=True, query_pre_attn_scalar=12, sliding_window=32,
    )  # fmt: skip
    torch.manual_seed(7)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    with torch.no_grad():
        for param in model.parameters():
            param.add_(torch.randn_like(param) * 0.02)
    directory = tmp_path_factory.mktemp("other-tokenizer")
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


def test_a_model_against_itself(tiny_model_dirs):
    a = layerscope.load_model(tiny_model_dirs["qwen3"])
    b = layerscope.load_model(tiny_model_dirs["qwen3"])
    result = compare([a, b], prompts=PROMPTS)
    (pair,) = result.pairs
    layers = ["embed", *map(str, range(a.n_layers)), "norm"]
    assert pair.layers_a == pair.layers_b == layers
    spread = [i for i in range(len(layers)) if not np.isnan(pair.linear[i, i])]
    assert len(spread) >= len(layers) - 1  # the embedding of prompts ending alike may have no spread
    np.testing.assert_allclose(np.diag(pair.linear)[spread], 1.0, atol=1e-9)
    np.testing.assert_allclose(np.diag(pair.debiased)[spread], 1.0, atol=1e-9)
    (row,) = result.agreement.to_dict("records")
    assert row["top1_agreement"] == 1.0 and row["mean_kl"] == pytest.approx(0.0, abs=1e-7)
    assert row["max_relative_error"] == 0.0 and row["grows_most_at"] is None
    np.testing.assert_allclose(result.errors["cosine"], 1.0, atol=1e-6)
    assert result.summary_table.loc[0, "aligned_cka"] == pytest.approx(1.0)
    assert result.model_names == [a.name, f"{a.name} (2)"]


def test_next_token_numbers_equal_hf_logits(tiny_models):
    """Top-1, its probability and KL(reference || other), against full HF forwards computed here."""
    ref, other = tiny_models["llama"], tiny_models["qwen3"]  # one tokenizer, one shape: comparable
    result = compare([ref, other], prompts=PROMPTS, weights=False)
    kl, agree = [], []
    for prompt in PROMPTS:
        ids = torch.tensor([ref.encode(prompt)])
        with torch.no_grad():
            p = torch.log_softmax(ref.module(input_ids=ids).logits[0, -1].double(), -1)
            q = torch.log_softmax(other.module(input_ids=ids).logits[0, -1].double(), -1)
        kl.append(float((p.exp() * (p - q)).sum()))
        agree.append(int(p.argmax()) == int(q.argmax()))
    row = result.agreement.iloc[0]
    assert row["mean_kl"] == pytest.approx(np.mean(kl), rel=1e-4)
    assert row["top1_agreement"] == pytest.approx(np.mean(agree))
    np.testing.assert_allclose(result.predictions["kl"], kl, rtol=1e-4, atol=1e-7)
    ids = torch.tensor([other.encode(PROMPTS[-1])])
    with torch.no_grad():
        probs = torch.softmax(other.module(input_ids=ids).logits[0, -1], -1)
    last = result.predictions.iloc[-1]
    assert last["p_top1"] == pytest.approx(float(probs.max()), rel=1e-4)
    assert last["top1"] == other.token_strings([int(probs.argmax())])[0]


def test_errors_and_cka_equal_their_definitions_on_the_captured_vectors(tiny_models):
    ref, other = tiny_models["llama"], tiny_models["qwen3"]
    result = compare([ref, other], tokens=WORDS, context="The word is {word}")
    r, x = result.residuals[ref.name], result.residuals[other.name]  # (layer, item, d)
    errors = result.errors.reset_index(drop=True)
    for i in range(len(errors)):
        expected = np.mean(np.linalg.norm(x[i] - r[i], axis=1) / np.linalg.norm(r[i], axis=1))
        assert errors.loc[i, "relative_error"] == pytest.approx(expected, rel=1e-6)
    (pair,) = result.pairs
    assert pair.linear[2, 3] == pytest.approx(linear_cka(r[2], x[3]))
    # the best match of each layer of A, the summaries as documented
    best = result.best_match
    assert list(best["best_layer_b"]) == [pair.layers_b[int(np.nanargmax(row))] for row in pair.linear]
    assert result.summary_table.loc[0, "aligned_cka"] == pytest.approx(np.nanmean(np.diag(pair.linear)))
    assert result.summary_table.loc[0, "mean_best_cka"] == pytest.approx(np.nanmean(pair.linear.max(axis=1)))
    # the word's last token is read, in the template
    tokens = result.tokens[result.tokens["model"] == ref.name]
    expected = [ref.token_strings([ref.tokenizer(f"The word is {w}")["input_ids"][-1]])[0] for w in WORDS.split(",")]
    assert list(tokens["read_token"]) == expected


def test_two_models_with_different_tokenizers(tiny_models, other_tokenizer_dir, tmp_path):
    other = layerscope.load_model(other_tokenizer_dir)
    ref = tiny_models["llama"]
    words = WORDS.split(",")
    assert any(ref.tokenizer(w)["input_ids"] != other.tokenizer(w)["input_ids"] for w in words)
    out = tmp_path / "run"
    result = compare([ref, other], tokens=WORDS, out=out)
    (pair,) = result.pairs
    assert pair.linear.shape == (ref.n_layers + 2, other.n_layers + 2)
    assert np.isfinite(pair.linear[1:]).all() and ((pair.linear[1:] > 0) & (pair.linear[1:] <= 1 + 1e-9)).all()
    assert result.errors.empty and result.agreement.empty and other.name in result.skipped
    # the last token of each word, in each tokenizer
    read = result.tokens[result.tokens["model"] == other.name]["read_token"]
    assert list(read) == [other.token_strings([other.tokenizer(w)["input_ids"][-1]])[0] for w in words]
    # aligned CKA walks the relative-depth diagonal of two depths
    rel_a = [d / ref.n_layers for d in range(ref.n_layers + 2)]
    rel_b = np.array([d / other.n_layers for d in range(other.n_layers + 2)])
    diag = [pair.linear[i, int(np.argmin(np.abs(rel_b - t)))] for i, t in enumerate(rel_a)]
    assert result.summary_table.loc[0, "aligned_cka"] == pytest.approx(np.nanmean(diag))
    names = {p.name for p in out.iterdir()}
    assert {"cka.html", "cka.png", "cka.csv", "pairs.csv", "best_match.csv", "tokens.csv", "run.json"} <= names
    back = layerscope.load_run(out)
    np.testing.assert_allclose(back.pairs[0].linear, pair.linear)
    np.testing.assert_allclose(back.pairs[0].debiased, pair.debiased)
    assert back.summary() == result.summary()
    assert json.loads((out / "run.json").read_text())["findings"]["cka"].startswith(f"{ref.name} vs {other.name}")


def test_reference_order_figures_and_run_directory(tiny_model_dirs, tmp_path):
    llama, qwen = str(tiny_model_dirs["llama"]), str(tiny_model_dirs["qwen3"])
    out = tmp_path / "cmp"
    code = main(
        ["--quiet", "compare", "--model", f"a={llama}", "--model", f"b={qwen}", "--model", f"c={llama}"]
        + [arg for p in PROMPTS for arg in ("--prompt", p)]
        + ["--reference", "c", "--out", str(out)]
    )
    assert code == 0
    record = json.loads((out / "run.json").read_text())
    assert record["reference"] == "c" and [m["display_name"] for m in record["models"]] == ["a", "b", "c"]
    agreement = pd.read_csv(out / "agreement.csv")
    assert list(agreement["model"]) == ["a", "b"] and agreement.loc[0, "top1_agreement"] == 1.0
    assert set(record["pairs"]) == {"a vs b", "a vs c", "b vs c"}
    assert record["command"][:8] == [
        "layerscope",
        "compare",
        "--model",
        f"a={llama}",
        "--model",
        f"b={qwen}",
        "--model",
        f"c={llama}",
    ]
    for stem in ("cka", "errors", "agreement"):
        spec = json.loads((out / f"{stem}.plotly.json").read_text())
        assert spec["data"], stem
    back = layerscope.load_run(out)
    assert back.closer_everywhere() is None and len(back.pairs) == 3
    # the report's section: the three figures in reading order, each with its sentence, and the key numbers
    from layerscope.experiments.report_sections import read_section

    section = read_section(out)
    assert [stem for stem, _ in section.figures] == ["cka", "errors", "agreement"]
    assert set(section.findings) == {"cka", "errors", "agreement"}
    assert "pairs" in section.numbers and "agreement" in section.numbers
    page = layerscope.report([out], out=tmp_path / "page")
    assert page.sections[0].experiment == "compare" and (tmp_path / "page" / "report.html").is_file()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--model", "x"], "--model x gives fewer than 2 models"),
        (["--model", "x", "--model", "y", "--set", "colors", "--prompt", "a"], "give words or prompts, not both"),
        (["--model", "x", "--model", "y", "--prompt", "a", "--prompt", "b"], "CKA needs at least 4"),
        (
            ["--model", "x", "--model", "y", "--reference", "z", "--set", "colors"],
            "--reference z names none of the models",
        ),
        (["--model", "x", "--model", "y", "--context", "nothing"], "--context nothing is not"),
        (["--model", "x", "--model", "y", "--batch-size", "0"], "--batch-size 0 must be at least 1"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(argv, message, capsys):
    assert main(["compare", *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err


def test_config_round_trips_through_its_command():
    config = CompareConfig(
        models=(ModelSpec("a.gguf", name="q4"), ModelSpec("runs/q8", dtype="bfloat16")),
        prompts=("1+1=",) * 4,
        reference="runs/q8",
        weights=False,
    )
    config.validate()
    argv = config.command()
    # the second model's dtype travels with it: the command reruns bfloat16, not float32 (issue 27)
    assert argv[:6] == ["layerscope", "compare", "--model", "q4=a.gguf", "--model", "runs/q8@dtype=bfloat16"]
    assert parse(argv) == config
    assert "--no-weights" in argv and argv[argv.index("--reference") + 1] == "runs/q8"
    assert config.reference_index() == 1
    with pytest.raises(ConfigError, match="reference='nope' names none"):
        CompareConfig(models=config.models, reference="nope").validate()


def test_formats_of_one_model_with_weight_errors(tiny_model_dirs, tmp_path):
    """The tiny model against its MLX 8- and 4-bit re-quantizations: weight rows from the checkpoints, and
    8-bit closer than 4-bit at every layer, in the weights and in the residual stream."""
    source = str(tiny_model_dirs["llama"])
    q8 = layerscope.quantize(source, to="mlx", bits=8, group_size=64, out=tmp_path / "q8")
    q4 = layerscope.quantize(source, to="mlx", bits=4, group_size=64, out=tmp_path / "q4")
    specs = [ModelSpec(source), ModelSpec(str(q8), name="q8"), ModelSpec(str(q4), name="q4")]
    result = compare(specs, prompts=PROMPTS)
    weights = result.weights
    assert set(weights["model"]) == {"q8", "q4"}
    expected = layerscope.weight_errors(source, str(q4))
    np.testing.assert_allclose(
        weights[weights["model"] == "q4"]["relative_error"].to_numpy(), expected["relative_error"].to_numpy()
    )
    by_model = {m: rows.set_index("tensor")["relative_error"] for m, rows in weights.groupby("model")}
    quantized = by_model["q4"] > 0  # norms stay unquantized: no error in either
    assert quantized.sum() >= 7 and (by_model["q8"][quantized] < by_model["q4"][quantized]).all()
    assert (by_model["q8"][~quantized] == 0).all()
    assert result.closer_everywhere() == ("q8", "q4")
    rows = result.agreement.set_index("model")
    assert rows.loc["q8", "mean_kl"] < rows.loc["q4", "mean_kl"]
    assert rows.loc["q8", "weight_relative_error"] < rows.loc["q4", "weight_relative_error"]
    assert "q8 is closer than q4 at every layer" in result.findings()["errors"]


@pytest.mark.default_model
def test_default_model_8bit_is_closer_than_4bit_at_every_layer(default_model, full_tour):
    """The full tour's compare step on the default model (the session's full tour, read back from its run
    directory): its MLX 8-bit copy is closer to it than the 4-bit one at every layer, agrees on more next
    tokens and has the lower KL."""
    from layerscope.experiments.tour import ARITHMETIC_PROMPTS, COMPARE_FORMATS

    result = layerscope.load_run(full_tour / "compare")
    assert result.config.prompts == ARITHMETIC_PROMPTS
    assert [spec.name for spec in result.config.models[1:]] == [name for name, _ in COMPARE_FORMATS]
    errors = result.errors.pivot(index="depth", columns="model", values="relative_error")
    assert len(errors) == default_model.n_layers + 2
    assert (errors["mlx-8bit"] < errors["mlx-4bit"]).all(), errors
    rows = result.agreement.set_index("model")
    assert rows.loc["mlx-8bit", "mean_kl"] < rows.loc["mlx-4bit", "mean_kl"]
    assert rows.loc["mlx-8bit", "top1_agreement"] >= rows.loc["mlx-4bit", "top1_agreement"]
    assert rows.loc["mlx-8bit", "weight_relative_error"] < rows.loc["mlx-4bit", "weight_relative_error"]


def test_findings_state_best_matches_only_with_enough_positions_for_the_width(tiny_models, tmp_path):
    """4 prompts at width 64: a warning, the chance level named, no 'matches ... best'; 64 words (one per
    dimension): the best match is stated with the CKA it quotes, and the count survives a reload."""
    from layerscope.analysis.cka import cka_chance, linear_cka

    model = tiny_models["llama"]
    with pytest.warns(UserWarning, match="CKA over 4 read positions at width 64"):
        few = compare([model, model], prompts=PROMPTS[:4])
    text = few.findings()["cka"]
    assert "over 4 read positions at width 64" in text and " best (CKA" not in text
    assert f"about {cka_chance(4, 64):.2f}" in text and "mean best-match CKA" in text
    rng = np.random.default_rng(0)  # the chance level is what unrelated representations give (oracle)
    measured = np.mean([linear_cka(rng.standard_normal((4, 64)), rng.standard_normal((4, 64))) for _ in range(50)])
    assert measured == pytest.approx(cka_chance(4, 64), abs=0.02)
    words = [f"w{i}" for i in range(64)]
    many = compare([model, model], tokens=words, out=tmp_path / "run")
    text = many.findings()["cka"]
    assert "over 64 read positions" in text and "matches block" in text and "best (CKA 1.000)" in text
    assert layerscope.load_run(tmp_path / "run").findings()["cka"] == text
