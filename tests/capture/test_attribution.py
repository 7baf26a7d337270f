"""Attribution patching against the first-order Taylor value computed with ``torch.autograd`` on a hook written in
tests/patch_oracle.py, and against exact patching (their ranks must agree)."""

from __future__ import annotations

import pandas as pd
import pytest
import torch
from patch_oracle import CLEAN, CORRUPT, plain_logits, rounded_copy, taylor_value

from layerscope.capture.attribution import AttributionPatching
from layerscope.capture.patching import Cell, PairIds, PatchEngine, metric_values
from layerscope.errors import LayerscopeError


def _pair(model) -> PairIds:
    (answer,), (wrong,) = model.encode(" Mary", bos=False), model.encode(" John", bos=False)
    return PairIds(tuple(model.encode(CLEAN)), tuple(model.encode(CORRUPT)), answer, wrong)


def _metric(name: str, pair: PairIds, clean: torch.Tensor):
    def metric(logits):
        if name == "logit-diff":
            return logits[pair.answer] - logits[pair.wrong]
        logp = torch.log_softmax(logits.double(), -1)
        if name == "prob":
            return logp[pair.answer].exp()
        ref = torch.log_softmax(clean.double(), -1)
        return (ref.exp() * (ref - logp)).sum()

    return metric


@pytest.mark.parametrize(
    "arch, metric, direction",
    [("llama", "logit-diff", "denoise"), ("gemma2", "prob", "denoise"), ("qwen3", "kl", "denoise"),
     ("olmo3", "logit-diff", "noise")],
)  # fmt: skip
def test_every_cell_equals_the_autograd_taylor_value(tiny_models, arch, metric, direction):
    model = tiny_models[arch]
    pair = _pair(model)
    estimate = AttributionPatching(model, pair, metric=metric)
    n, f, last = model.n_layers, pair.changed[0], pair.length - 1
    cells = [Cell("resid", d, p) for d in (0, 1, n) for p in (f, last)]
    cells += [Cell(part, k, p) for part in ("attn", "mlp") for k in (0, n - 1) for p in (f, last, None)]
    cells += [Cell("heads", 1, None, 0), Cell("heads", 2, f, 3), Cell("resid", 1, 0)]
    got = estimate.values(cells, direction)
    base, source = (pair.corrupt, pair.clean) if direction == "denoise" else (pair.clean, pair.corrupt)
    clean = plain_logits(model, list(pair.clean))
    for value, cell in zip(got, cells):
        want = taylor_value(
            model, list(base), list(source), cell.part, cell.layer, cell.position, _metric(metric, pair, clean),
            cell.head, 16,
        )  # fmt: skip
        assert value == pytest.approx(want, rel=1e-4, abs=1e-6 * max(1.0, abs(want))), cell
    assert got[-1] == pytest.approx(estimate.values([Cell("resid", 0, 0)], direction)[0])  # before the change: base


def test_a_source_model_taylor_value(tiny_models):
    model = tiny_models["llama"]
    source = rounded_copy(model)
    pair = _pair(model)
    estimate = AttributionPatching(model, pair, source_model=source)
    cells = [Cell("resid", 2, 1), Cell("mlp", 1, None), Cell("heads", 0, None, 1)]
    clean = plain_logits(source, list(pair.clean))
    for value, cell in zip(estimate.values(cells), cells):
        want = taylor_value(
            model, list(pair.corrupt), list(pair.clean), cell.part, cell.layer, cell.position,
            _metric("logit-diff", pair, clean), cell.head, 16, source_model=source,
        )  # fmt: skip
        assert value == pytest.approx(want, rel=1e-4), cell
    clean_value, corrupt_value = estimate.end_values("denoise")
    assert clean_value == pytest.approx(float(clean[pair.answer] - clean[pair.wrong]), rel=1e-5)


def test_its_ranks_follow_exact_patching(tiny_models):
    """Over every resid/attn/mlp cell after the change, the estimated and exact effects rank alike."""
    model = tiny_models["llama"]
    pair = _pair(model)
    f = pair.changed[0]
    cells = [
        Cell(part, k, p)
        for part in ("resid", "attn", "mlp")
        for k in range(model.n_layers)
        for p in range(f, pair.length)
    ]
    exact_scores = PatchEngine(model, pair, parts=("resid", "attn", "mlp")).run_cells(cells)
    exact = metric_values(exact_scores, None, "logit-diff", False, pair.answer, pair.wrong)
    estimate = AttributionPatching(model, pair, parts=("resid", "attn", "mlp")).values(cells)
    rho = pd.Series(estimate).corr(pd.Series(exact), method="spearman")
    print(f"Spearman rank correlation over {len(cells)} cells: {rho:.3f}")
    assert rho > 0.8


def test_bad_input_is_refused(tiny_models):
    model = tiny_models["llama"]
    with pytest.raises(LayerscopeError, match="unknown metric 'loss'"):
        AttributionPatching(model, _pair(model), metric="loss")
    with pytest.raises(LayerscopeError, match="same tokens"):
        AttributionPatching(model, PairIds((2, 5), (2, 5), 1, 3))
    with pytest.raises(LayerscopeError, match="unknown direction"):
        AttributionPatching(model, _pair(model)).values([Cell("resid", 0, 1)], "sideways")
