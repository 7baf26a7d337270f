"""The next-token distribution after short inputs, at the last position only.

Used by the echo experiment (seed 004): feed a word's tokens (with or without BOS), read the model's
next-token distribution, and keep only its top-k and the probability and rank of one target token.
Inputs of equal length are batched together, so no padding (and no attention mask) is ever needed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass

import torch

from ..capture.token_rank import token_ranks, top_tokens
from ..errors import LayerscopeError
from ..models import Model


@dataclass(frozen=True)
class NextToken:
    """The next-token distribution after one input, reduced to what the echo table needs.

    Attributes:
        top_ids: the ``k`` most probable next tokens, most probable first.
        top_probs: their probabilities (softmax over the full vocabulary, float32).
        target_id: the token whose probability is tracked (the echo target).
        p_target: its probability.
        rank_target: its rank in the order of ``top_ids`` (1 = most probable; tied tokens in id order, so rank
            1 is exactly ``top_ids[0] == target_id``, as in bfloat16, where ties are common).
    """

    top_ids: tuple[int, ...]
    top_probs: tuple[float, ...]
    target_id: int
    p_target: float
    rank_target: int


def length_batches(sequences: Sequence[Sequence[int]], batch_size: int) -> list[list[int]]:
    """Indices of ``sequences`` grouped by length, each group cut into chunks of at most ``batch_size``.

    Example:
        >>> length_batches([[1], [2, 3], [4]], batch_size=8)
        [[0, 2], [1]]
    """
    if batch_size < 1:
        raise LayerscopeError(f"batch size {batch_size} is not valid; give at least 1")
    by_length: dict[int, list[int]] = {}
    for index, seq in enumerate(sequences):
        if not seq:
            raise LayerscopeError(f"input {index} holds no token; every input needs at least one")
        by_length.setdefault(len(seq), []).append(index)
    return [group[i : i + batch_size] for group in by_length.values() for i in range(0, len(group), batch_size)]


@torch.inference_mode()
def last_position_logits(model: Model, input_ids: torch.Tensor) -> torch.Tensor:
    """Logits at the last position only, shape ``(batch, vocab)``, float32.

    ``input_ids`` is ``(batch, seq)`` with no padding. The model computes the unembedding for the last
    position alone (``logits_to_keep=1``) and keeps no KV cache.
    """
    output = model.module(input_ids=input_ids.to(model.device), logits_to_keep=1, use_cache=False)
    return output.logits[:, -1, :].float()  # (batch, vocab)


def next_token_stats(
    model: Model,
    sequences: Sequence[Sequence[int]],
    targets: Sequence[int],
    *,
    top_k: int = 5,
    batch_size: int = 64,
    track: Callable[[Iterable, str, int], Iterator] | None = None,
) -> list[NextToken]:
    """For each input sequence, its top-k next tokens and the probability and rank of its target token.

    Args:
        sequences: token ids of each input, exactly as fed (include the BOS yourself when wanted).
        targets: one token id per input whose probability and rank are reported.
        top_k: how many of the most probable next tokens to keep.
        batch_size: inputs per forward pass; inputs of equal length share a batch.
        track: an optional progress wrapper ``track(iterable, description, total)``.

    Example:
        >>> stats = next_token_stats(model, [[3415], [2, 3415]], targets=[3415, 3415], top_k=3)
        >>> stats[0].top_ids[0] == stats[0].target_id        # the model echoes ' John'
        True
    """
    if len(sequences) != len(targets):
        raise LayerscopeError(f"{len(sequences)} inputs but {len(targets)} targets; give one target per input")
    vocab = int(model.unembedding_matrix.shape[0])
    if not 1 <= top_k <= vocab:
        raise LayerscopeError(f"top-k {top_k} is not valid; give 1 to {vocab}")
    results: list[NextToken | None] = [None] * len(sequences)
    batches = length_batches(sequences, batch_size)
    iterator = track(batches, f"Next tokens ({model.name})", len(batches)) if track else batches
    for batch in iterator:
        input_ids = torch.tensor([list(sequences[i]) for i in batch], dtype=torch.long)  # (b, seq)
        logits = last_position_logits(model, input_ids)  # (b, vocab)
        probs = torch.softmax(logits, dim=-1)  # (b, vocab)
        target = torch.tensor([int(targets[i]) for i in batch], device=probs.device)  # (b,)
        p_target = probs.gather(1, target[:, None])  # (b, 1)
        rank = token_ranks(logits, target)  # (b,): tied logits by token id
        _, top_ids = top_tokens(logits, top_k)  # (b, k), in rank order
        top_probs = probs.gather(1, top_ids)  # (b, k)
        for row, index in enumerate(batch):
            results[index] = NextToken(
                top_ids=tuple(int(i) for i in top_ids[row].tolist()),
                top_probs=tuple(float(p) for p in top_probs[row].tolist()),
                target_id=int(target[row]),
                p_target=float(p_target[row, 0]),
                rank_target=int(rank[row]),
            )
    return [r for r in results if r is not None]
