"""One order of the vocabulary for ranks and top-k lists: score descending, ties by token id ascending.

A token's rank is its 1-based position in that order: ``1 + #(score > s) + #(score == s and id < target)``, the
position a stable descending sort gives (as TransformerLens' ``test_prompt`` reads a rank off a sorted list).
Every token has its own rank, so tied scores (a flat or saturated distribution) never make every token rank 1;
a NaN score (activations that overflowed) counts as the lowest. :func:`top_tokens` lists the top k in the
same order, so the rank-1 token is always the first of the list.

Example:
    >>> token_ranks(torch.tensor([[1.0, 3.0, 3.0, 0.0]]), torch.tensor([2]))
    tensor([2])
    >>> top_tokens(torch.tensor([[1.0, 3.0, 3.0, 0.0]]), 2)[1]
    tensor([[1, 2]])
"""

from __future__ import annotations

import torch


def _comparable(scores: torch.Tensor) -> torch.Tensor:
    """``scores`` with NaN as minus infinity (the lowest), so comparisons and sorts order every entry."""
    return torch.where(torch.isnan(scores), torch.full_like(scores, float("-inf")), scores)


def token_ranks(scores: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """``(rows,)`` int64 rank (1 = top) of ``targets (rows,)`` in ``scores (rows, vocab)``, ties by token id."""
    scores = _comparable(scores)
    targets = targets.to(device=scores.device, dtype=torch.long)
    own = scores.gather(1, targets[:, None])  # (rows, 1)
    ids = torch.arange(scores.shape[-1], device=scores.device)  # (vocab,)
    before = (scores > own) | ((scores == own) & (ids[None, :] < targets[:, None]))  # (rows, vocab)
    return before.sum(dim=-1) + 1


def top_tokens(scores: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(values, ids)``, each ``(rows, k)``: the ``k`` best tokens of ``scores (rows, vocab)`` in rank order.

    ``torch.topk`` leaves the order of equal scores open; rows with a tie among or at the edge of its top k are
    sorted stably instead (a whole-row sort, only for those rows). Values are the scores as given (NaN kept).
    """
    comparable = _comparable(scores)
    values, ids = torch.topk(comparable, k, dim=-1)  # (rows, k)
    edge = values[:, -1:]
    tied = ((comparable == edge).sum(dim=-1) > 1) | (values[:, 1:] == values[:, :-1]).any(dim=-1)
    for row in torch.nonzero(tied).flatten().tolist():
        ids[row] = torch.sort(comparable[row], descending=True, stable=True).indices[:k]
    return scores.gather(1, ids), ids
