"""``layerscope.patch``: pairs, tables, the metric and its normalization, pair sets, the run directory."""

from __future__ import annotations

import html
import json

import numpy as np
import pandas as pd
import pytest
import torch
from patch_oracle import CLEAN, CORRUPT, patched_logits
from scipy.stats import spearmanr

import layerscope
from layerscope.analysis.patching import summarize
from layerscope.errors import LayerscopeError
from layerscope.experiment import ConfigError
from layerscope.experiments.patch import PatchConfig, patch
from layerscope.tasks.pairs import PAIR_SETS, load_pair_file, pair_set


@pytest.fixture(scope="module")
def llama(tiny_models):
    return tiny_models["llama"]


def test_one_pair_writes_a_run_that_load_run_reopens(llama, tmp_path):
    result = patch(CLEAN, CORRUPT, answer=" Mary", wrong=" John", part="resid,heads", model=llama, out=tmp_path / "r")
    cells = result.cells
    assert list(cells.columns[:8]) == ["part", "layer", "depth", "position", "token", "head", "value", "normalized"]
    resid = cells[cells["part"] == "resid"]
    assert len(resid) == (llama.n_layers + 1) * len(llama.encode(CLEAN))
    assert list(dict.fromkeys(resid["layer"])) == ["embed", "0", "1", "2"]
    # value = logit(answer) - logit(wrong) of the hooked forward; normalized from the clean and corrupt values
    ids, source = llama.encode(CORRUPT), llama.encode(CLEAN)
    (a,), (w,) = llama.encode(" Mary", bos=False), llama.encode(" John", bos=False)
    row = resid[(resid["layer"] == "1") & (resid["position"] == len(ids) - 1)].iloc[0]
    logits = patched_logits(llama, ids, source, "resid", 2, len(ids) - 1)
    assert row["value"] == pytest.approx(float(logits[a] - logits[w]), rel=1e-4)
    share = (row["value"] - result.corrupt_value) / (result.clean_value - result.corrupt_value)
    assert row["normalized"] == pytest.approx(share)
    heads = cells[cells["part"] == "heads"]
    assert heads["position"].isna().all() and len(heads) == llama.n_layers * 4
    record = json.loads((tmp_path / "r" / "run.json").read_text())
    assert record["clean_value"] == pytest.approx(result.clean_value)
    assert record["findings"]["patch_resid"].startswith("on one pair, patching")
    for name in ("patch.csv", "pairs.csv", "patch_resid.html", "patch_resid.png", "patch_heads.png"):
        assert (tmp_path / "r" / name).is_file()
    again = layerscope.load_run(tmp_path / "r")
    assert again.cells.equals(cells) and again.tokens == result.tokens and again.changed == result.changed
    assert again.findings() == result.findings()


@pytest.mark.parametrize("metric", ["prob", "kl"])
def test_prob_and_kl_from_the_hooked_forward(llama, metric):
    result = patch(CLEAN, CORRUPT, answer=" Mary", wrong=" John", metric=metric, model=llama)
    ids, source = llama.encode(CORRUPT), llama.encode(CLEAN)
    (a,) = llama.encode(" Mary", bos=False)
    p = len(ids) - 2
    row = result.cells[(result.cells["layer"] == "0") & (result.cells["position"] == p)].iloc[0]
    logp = torch.log_softmax(patched_logits(llama, ids, source, "resid", 1, p).double(), -1)
    clean = torch.log_softmax(patched_logits(llama, ids, source, "resid", 0, None).double(), -1)  # all of embed
    want = float(logp[a].exp()) if metric == "prob" else float((clean.exp() * (clean - logp)).sum())
    assert row["value"] == pytest.approx(want, rel=1e-4, abs=1e-7)
    if metric == "kl":
        assert result.clean_value == pytest.approx(0.0, abs=1e-9)


def test_a_pair_set_gives_means_and_intervals(llama, tmp_path):
    pairs = tmp_path / "pairs.jsonl"
    rows = [
        {"clean": "5+2=", "corrupt": "5+3=", "answer": "7", "wrong": "8"},
        {"clean": "4+2=", "corrupt": "4+3=", "answer": "6", "wrong": "7"},
        {"clean": "1+2=", "corrupt": "1+3=", "answer": "3", "wrong": "4"},
        {"clean": "2+2=", "corrupt": "2+3=", "answer": "4", "wrong": "5"},
        {"clean": "3+2=", "corrupt": "3+3=", "answer": "5", "wrong": "6"},
    ]
    pairs.write_text("".join(json.dumps(r) + "\n" for r in rows))
    result = patch(pairs=pairs, part="mlp", model=llama, direction="noise")
    assert result.n_pairs == 5 and (result.cells["n_pairs"] == 5).all()
    singles = [
        patch(
            r["clean"], r["corrupt"], answer=r["answer"], wrong=r["wrong"], part="mlp", model=llama, direction="noise"
        )
        for r in rows
    ]
    values = np.stack([s.cells["value"].to_numpy() for s in singles])
    np.testing.assert_allclose(result.cells["value"], values.mean(0), rtol=1e-6)
    assert result.clean_value == pytest.approx(np.mean([s.clean_value for s in singles]))
    ran = result.cells["ci_low"].notna()
    assert ran.any() and (result.cells.loc[ran, "ci_low"] <= result.cells.loc[ran, "ci_high"] + 1e-12).all()


def test_summarize_is_the_ratio_of_means_with_paired_resamples():
    values = np.array([[1.0, 0.0], [0.0, 0.0], [1.0, 1.0], [0.5, 0.5], [1.0, 0.0]])
    out = summarize(values, np.ones(5), np.zeros(5), seed=0)
    np.testing.assert_allclose(out["normalized"], values.mean(0))
    assert np.all(out["ci_low"] <= out["normalized"]) and np.all(out["normalized"] <= out["ci_high"])
    few = summarize(values[:2], np.ones(2), np.zeros(2))
    assert np.isnan(few["ci_low"]).all()


@pytest.mark.parametrize("name", sorted(PAIR_SETS))
def test_builtin_pair_sets_fit_one_length_on_the_tokenizer(llama, name):
    pairs = pair_set(name, n=8, seed=1)
    assert len(pairs) == 8 and all(p.clean != p.corrupt and p.answer != p.wrong for p in pairs)
    try:
        result = patch(pairs=name, n=8, model=llama)
    except ConfigError as exc:  # the tiny tokenizer splits most names, capitals, weekdays
        assert name != "arithmetic" and "no pair of the set fits" in str(exc)
        return
    assert 1 <= result.n_pairs <= 8 and result.n_pairs + result.left_out == 8
    lengths = {len(llama.encode(c)) for c in result.pairs["clean"]} | {
        len(llama.encode(c)) for c in result.pairs["corrupt"]
    }
    assert len(lengths) == 1


def test_bad_pairs_are_named(llama, tmp_path):
    with pytest.raises(LayerscopeError, match="tokenizes to"):
        patch("The word is red", "The word is red. The", answer=" x", wrong=" y", model=llama)
    with pytest.raises(LayerscopeError, match="is 2 tokens|is 3 tokens|tokens \\("):
        patch(CLEAN, CORRUPT, answer=" Mary went", wrong=" John", model=llama)
    with pytest.raises(ConfigError, match="unknown part 'neurons'"):
        PatchConfig(clean="a", corrupt="b", answer="c", wrong="d", part="neurons").validate()
    with pytest.raises(ConfigError, match="missing"):
        PatchConfig(clean="a").validate()
    bad = tmp_path / "p.csv"
    bad.write_text("clean,corrupt,answer\na,b,c\n")
    with pytest.raises(LayerscopeError, match="lacks column 'wrong'"):
        load_pair_file(bad)


def test_a_source_model_patches_the_same_prompt_across_formats(llama, tmp_path):
    """The float model's activations into its 4-bit copy, one prompt: the cells equal a hooked forward that copies
    the float model's activation; 1 is the float run, 0 the copy's own."""
    from patch_oracle import plain_logits, rounded_copy

    quantized = rounded_copy(llama)
    result = patch(
        CLEAN, CLEAN, answer=" Mary", wrong=" John", part="resid,mlp", model=quantized, source_model=llama,
        out=tmp_path / "r",
    )  # fmt: skip
    ids = llama.encode(CLEAN)
    (a,), (w,) = llama.encode(" Mary", bos=False), llama.encode(" John", bos=False)
    for logits, value in (
        (plain_logits(llama, ids), result.clean_value),
        (plain_logits(quantized, ids), result.corrupt_value),
    ):
        assert value == pytest.approx(float(logits[a] - logits[w]), rel=1e-4)
    cells = result.cells
    for part, layer, depth, p in (("resid", "0", 1, 3), ("resid", "embed", 0, 0), ("mlp", "2", 2, len(ids) - 1)):
        row = cells[(cells["part"] == part) & (cells["layer"] == layer) & (cells["position"] == p)].iloc[0]
        logits = patched_logits(quantized, ids, ids, part, depth, p, source_model=llama)
        assert row["value"] == pytest.approx(float(logits[a] - logits[w]), rel=1e-4), (part, layer, p)
    last = cells[(cells["part"] == "resid") & (cells["layer"] == "2") & (cells["position"] == len(ids) - 1)]
    assert float(last["normalized"].iloc[0]) == pytest.approx(1.0, abs=0.2)  # only the copy's head left
    record = json.loads((tmp_path / "r" / "run.json").read_text())
    assert [m["name"] for m in record["models"]] == [quantized.name, llama.name]
    assert "from llama's clean run into the corrupt run" in result.title("resid")
    assert layerscope.load_run(tmp_path / "r").cells.equals(cells)
    with pytest.raises(LayerscopeError, match="same tokens \\(allowed only with a source model\\)"):
        patch(CLEAN, CLEAN, answer=" Mary", wrong=" John", model=llama)


def test_attribution_gives_the_same_table_and_ranks_like_exact_patching(llama, tmp_path):
    exact = patch(CLEAN, CORRUPT, answer=" Mary", wrong=" John", part="resid,attn,heads", model=llama)
    estimate = patch(
        CLEAN, CORRUPT, answer=" Mary", wrong=" John", part="resid,attn,heads", model=llama, method="attribution",
        out=tmp_path / "a",
    )  # fmt: skip
    assert list(estimate.cells.columns) == list(exact.cells.columns)
    assert estimate.cells[["part", "layer", "position", "head"]].equals(
        exact.cells[["part", "layer", "position", "head"]]
    )
    assert estimate.clean_value == pytest.approx(exact.clean_value, rel=1e-5)
    assert estimate.corrupt_value == pytest.approx(exact.corrupt_value, rel=1e-5)
    changed = exact.cells["position"].isna() | (exact.cells["position"] >= exact.changed[0])
    rho = estimate.cells.loc[changed, "value"].corr(exact.cells.loc[changed, "value"], method="spearman")
    assert rho > 0.8, rho
    assert (estimate.cells.loc[~changed, "value"] == estimate.corrupt_value).all()  # no difference, no estimate
    assert "attribution estimate" in estimate.title("resid")
    record = json.loads((tmp_path / "a" / "run.json").read_text())
    assert record["config"]["method"] == "attribution" and "--method" in record["command"]
    # the recorded rank correlation is scipy's over every changed cell of the two tables (all fit in the sample)
    for part in ("resid", "attn", "heads"):
        mask = changed & (exact.cells["part"] == part)
        rho = spearmanr(estimate.cells.loc[mask, "value"], exact.cells.loc[mask, "value"]).statistic
        agreement = estimate.agreement[part]
        assert agreement.rho == pytest.approx(rho, abs=1e-12), part
        assert agreement.n_cells == agreement.of_cells == int(mask.sum())
        assert record["rank_correlation"][part]["rho"] == pytest.approx(rho, abs=1e-12)
        assert agreement.ci_low <= rho <= agreement.ci_high
        assert f"with exact patching: Spearman rho {rho:.2f} (95% interval" in record["findings"][f"patch_{part}"]
    assert any(f"over all {estimate.agreement['resid'].n_cells} cells" in line for line in estimate.summary())
    sample = estimate.exact_sample
    truth = sample.merge(exact.cells, on=["part", "layer", "position", "head"], how="left")
    assert np.allclose(truth["exact"], truth["value"], rtol=1e-6, atol=1e-7)  # exact values of the exact run
    again = layerscope.load_run(tmp_path / "a")
    assert again.agreement == estimate.agreement and again.exact_sample.equals(sample)
    page = layerscope.report([tmp_path / "a"], out=tmp_path / "report").html()
    assert html.escape(estimate.findings()["patch_attn"]) in page  # the sentence under the attn figure


def test_attribution_compares_a_reproducible_sample_of_cells(llama):
    args = dict(answer=" Mary", wrong=" John", model=llama, method="attribution", exact_sample=8)
    one, two = (patch(CLEAN, CORRUPT, **args) for _ in range(2))
    assert one.exact_sample.equals(two.exact_sample) and one.record() == two.record()
    other = patch(CLEAN, CORRUPT, seed=1, **args)
    assert not other.exact_sample[["layer", "position"]].equals(one.exact_sample[["layer", "position"]])
    agreement = one.agreement["resid"]
    assert agreement.n_cells == 8 < agreement.of_cells and len(one.exact_sample) == 8
    rho = spearmanr(one.exact_sample["attribution"], one.exact_sample["exact"]).statistic
    assert agreement.rho == pytest.approx(rho, abs=1e-12)
    assert one.findings()["patch_resid"].endswith(
        f"Spearman rho {rho:.2f} over 8 of {agreement.of_cells} cells (a random sample, seed 0) "
        "(too few cells for an interval)"
    )
    none = patch(CLEAN, CORRUPT, **{**args, "exact_sample": 0})
    assert none.agreement == {} and none.exact_sample is None
    assert "not compared with exact patching" in none.summary()[0]


def test_the_command_line_prints_and_records_the_rank_correlation(tiny_model_dirs, tmp_path, capsys):
    from layerscope.cli.main import main

    argv = ["patch", "--model", str(tiny_model_dirs["llama"]), "--clean", CLEAN, "--corrupt", CORRUPT]
    argv += ["--answer", " Mary", "--wrong", " John", "--method", "attribution", "--exact-sample", "12"]
    assert main(["--quiet", *argv, "--out", str(tmp_path / "r")]) == 0
    printed = capsys.readouterr()
    record = json.loads((tmp_path / "r" / "run.json").read_text())
    found = record["rank_correlation"]["resid"]
    assert found["n_cells"] == 12 and found["seed"] == 0 and record["config"]["exact_sample"] == 12
    sample = pd.read_csv(tmp_path / "r" / "exact_sample.csv")
    assert found["rho"] == pytest.approx(spearmanr(sample["attribution"], sample["exact"]).statistic, abs=1e-9)
    assert f"Spearman rho {found['rho']:.2f} (95% interval" in printed.out + printed.err


def test_the_command_line_patches_from_a_source_model(tiny_model_dirs, tmp_path, capsys):
    """Two saved models of one tokenizer, depth and width (a Qwen 3 and a Llama): the command records both and the
    command that reproduces the run."""
    from layerscope.cli.main import main

    model, source = str(tiny_model_dirs["llama"]), str(tiny_model_dirs["qwen3"])
    argv = ["patch", "--model", model, "--source-model", source, "--clean", CLEAN, "--corrupt", CLEAN]
    argv += ["--answer", " Mary", "--wrong", " John", "--out", str(tmp_path / "r")]
    assert main(["--quiet", *argv]) == 0, capsys.readouterr().err
    record = json.loads((tmp_path / "r" / "run.json").read_text())
    assert [m["source"] for m in record["models"]] == [model, source]
    assert record["command"][record["command"].index("--source-model") + 1] == source
