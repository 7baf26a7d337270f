"""What compare found, as a result: its long tables, the order of two formats, the findings, and a saved run
read back into the same CKA matrices."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from layerscope.analysis.pair_cka import PairCKA
from layerscope.analysis.residual_error import ERROR_COLUMNS
from layerscope.experiments.compare import CompareConfig
from layerscope.experiments.compare_result import CompareResult
from layerscope.model_spec import ModelSpec

PROMPTS = ("5+2=", "3+4=", "9-2=", "2*3=")
LAYERS = ["embed", "0", "1", "norm"]


def _pair(a: str, b: str, seed: int) -> PairCKA:
    linear = np.random.default_rng(seed).uniform(0.1, 0.9, size=(4, 3))
    return PairCKA(
        a=a, b=b, layers_a=LAYERS, layers_b=LAYERS[:3], linear=linear, debiased=linear - 0.05,
        relative_a=[0.0, 0.5, 1.0, 1.5], relative_b=[0.0, 0.5, 1.0],
    )  # fmt: skip


def _errors(model: str, values) -> pd.DataFrame:
    frame = pd.DataFrame({"layer": LAYERS, "depth": range(4), "relative_error": values})
    for column in ERROR_COLUMNS[3:]:
        frame[column] = 0.0
    frame.insert(0, "reference", "ref")
    frame.insert(0, "model", model)
    return frame


def _result(q4_errors=(0.01, 0.02, 0.05, 0.06)) -> CompareResult:
    config = CompareConfig(models=(ModelSpec("ref"), ModelSpec("q8"), ModelSpec("q4")), prompts=PROMPTS)
    tokens = pd.DataFrame(
        [
            {"model": m, "item": i, "set": "prompts", "text": p, "n_tokens": 3, "read_token": "="}
            for m in ("ref", "q8", "q4")
            for i, p in enumerate(PROMPTS)
        ]
    )
    return CompareResult(
        config=config,
        pairs=[_pair("ref", "q8", 0), _pair("ref", "q4", 1), _pair("q8", "q4", 2)],
        tokens=tokens,
        errors=pd.concat([_errors("q8", [0.005, 0.01, 0.02, 0.03]), _errors("q4", list(q4_errors))], ignore_index=True),
        agreement=pd.DataFrame(
            [
                {
                    "model": "q8",
                    "reference": "ref",
                    "top1_agreement": 1.0,
                    "mean_kl": 0.001,
                    "max_relative_error": 0.03,
                },
                {
                    "model": "q4",
                    "reference": "ref",
                    "top1_agreement": 0.75,
                    "mean_kl": 0.02,
                    "max_relative_error": 0.06,
                },
            ]
        ),
        predictions=pd.DataFrame(),
        weights=pd.DataFrame(),
        reference="ref",
        skipped={},
        residuals={},
    )


def test_the_long_tables_walk_every_cell_and_summarize_each_pair():
    result = _result()
    cka = result.cka
    assert len(cka) == 3 * 4 * 3 and result.n_inputs == 4 and result.input_kind == "prompts"
    first = cka[(cka["model_a"] == "ref") & (cka["model_b"] == "q4")]
    np.testing.assert_array_equal(first["cka"].to_numpy().reshape(4, 3), result.pairs[1].linear)
    assert list(first["layer_a"][:3]) == ["embed"] * 3 and list(first["layer_b"][:3]) == LAYERS[:3]
    best = result.best_match
    pair = result.pairs[0]
    rows = best[best["model_b"] == "q8"]
    assert list(rows["best_layer_b"]) == [LAYERS[int(np.argmax(row))] for row in pair.linear]
    summary = result.summary_table.set_index("model_b")
    assert summary.loc["q8", "aligned_cka"] == pytest.approx(pair.aligned())
    assert summary.loc["q8", "mean_best_debiased_cka"] == pytest.approx(pair.mean_best(debiased=True))


def test_closer_everywhere_and_the_findings_say_so():
    result = _result()
    assert result.closer_everywhere() == ("q8", "q4")
    found = result.findings()
    assert "q8 is closer than q4 at every layer" in found["errors"]
    assert found["agreement"].startswith("next token against ref over 4 prompts: q8: top-1 agreement")
    crossing = _result(q4_errors=(0.01, 0.005, 0.05, 0.06))  # q4 below q8 at block 0
    assert crossing.closer_everywhere() is None
    assert "closer than" not in crossing.findings()["errors"]


def test_a_saved_result_comes_back_with_the_same_matrices():
    result = _result()
    tables = {stem: frame.copy() for stem, frame in result.tables().items()}
    back = CompareResult.from_files(result.config, tables, {}, result.record(), None)
    for got, want in zip(back.pairs, result.pairs):
        assert (got.a, got.b, got.layers_a, got.layers_b) == (want.a, want.b, want.layers_a, want.layers_b)
        np.testing.assert_array_equal(got.linear, want.linear)
        np.testing.assert_array_equal(got.debiased, want.debiased)
        assert got.relative_a == want.relative_a and got.relative_b == want.relative_b
    assert back.summary() == result.summary() and back.reference == "ref"
