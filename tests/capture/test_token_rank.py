"""Ranks and top-k lists in one order (score descending, ties by token id), against a stable sort (the oracle)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from layerscope.capture.logit_lens import lens_readout
from layerscope.capture.token_rank import token_ranks, top_tokens


def _oracle_order(row: np.ndarray) -> np.ndarray:
    """Token ids by score descending, equal scores by id ascending, NaN last: a stable sort of ``-score``."""
    key = np.where(np.isnan(row), np.inf, -row)
    return np.argsort(key, kind="stable")


ROWS = {
    "distinct": np.random.default_rng(0).normal(size=50),
    "all tied": np.zeros(50),
    "ties in groups": np.random.default_rng(1).integers(0, 4, size=50).astype(float),
    "nan and inf": np.array([1.0, np.nan, np.inf, 1.0, -np.inf, np.nan, 0.0, np.inf] * 6 + [2.0, np.nan]),
    "saturated": np.array([0.0] * 20 + [1e30] * 5 + [-1e30] * 25),
}


@pytest.mark.parametrize("row", ROWS.values(), ids=ROWS.keys())
def test_every_token_has_the_rank_a_stable_sort_gives(row):
    scores = torch.tensor(np.stack([row, row[::-1].copy()]), dtype=torch.float32)
    for r, expected in enumerate(np.stack([_oracle_order(s) for s in scores.numpy()])):
        ranks = [int(token_ranks(scores[r : r + 1], torch.tensor([t]))[0]) for t in range(len(row))]
        assert sorted(ranks) == list(range(1, len(row) + 1))  # a permutation: no two tokens share a rank
        assert [ranks[t] for t in expected] == list(range(1, len(row) + 1))
        for k in (1, 5, len(row)):
            values, ids = top_tokens(scores[r : r + 1], k)
            assert ids[0].tolist() == expected[:k].tolist()
            torch.testing.assert_close(values[0], scores[r, ids[0]], equal_nan=True)
    many = token_ranks(scores, torch.tensor([3, 7]))  # a batch: each row's own target
    assert many.tolist() == [int(token_ranks(scores[r : r + 1], torch.tensor([t]))[0]) for r, t in ((0, 3), (1, 7))]


def test_a_flat_distribution_no_longer_ranks_every_token_first(tiny_models):
    """An LM head of zeros: every logit ties. The target's rank is its place among the ties (its id + 1), and
    the top-1 token of the list is the one ranked 1."""
    model = tiny_models["llama"]
    head = model.module.get_output_embeddings().weight
    saved = head.detach().clone()
    try:
        with torch.no_grad():
            head.zero_()
        rows = np.random.default_rng(2).normal(size=(3, model.config.hidden_size)).astype(np.float32)
        readout = lens_readout(model, rows, k=3, target=37)
    finally:
        with torch.no_grad():
            head.copy_(saved)
    assert readout.target_rank.tolist() == [38, 38, 38]
    assert readout.top_ids.tolist() == [[0, 1, 2]] * 3
