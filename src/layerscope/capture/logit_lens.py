"""Logit lens: decode any layer's residual through the final norm and the unembedding.

For residuals captured before the final norm (the embedding output and each decoder layer's output),
``logits = cap(scale * unembed(final_norm(h)))``: the final norm is whatever the model applies between its
last block and its output embedding (none in post-LN models, BERT's head transform), the scale Cohere's
or Granite's logit scale, the cap the final soft-cap (Gemma 2), all found and checked on one forward
(:mod:`layerscope.models.head`). At the last layer this is exactly the model's own next-token logits.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..models import Model
from .token_rank import token_ranks, top_tokens


@dataclass(frozen=True)
class LensReadout:
    """Logit-lens readout of ``L`` layers for one position.

    Attributes:
        top_ids: ``(L, k)`` token ids of the k most likely tokens per layer.
        top_probs: ``(L, k)`` their probabilities.
        target_rank: ``(L,)`` rank of the target token per layer, 1 = top (1 + the number of tokens with a
            larger logit), or None without a target.
        target_prob: ``(L,)`` probability of the target token per layer, or None.
    """

    top_ids: np.ndarray
    top_probs: np.ndarray
    target_rank: np.ndarray | None
    target_prob: np.ndarray | None


@torch.inference_mode()
def lens_logits(model: Model, residuals: np.ndarray | torch.Tensor, *, normed: bool = False) -> torch.Tensor:
    """Logits from residual vectors ``(..., d_model)`` -> ``(..., vocab)`` float32.

    ``normed=True`` skips the final norm (for vectors captured after it).
    """
    head = model.head  # the final norm, logit scale and soft-cap, as the model applies them
    h = torch.as_tensor(np.asarray(residuals), dtype=model.dtype, device=model.device)
    if not normed and head.final_norm is not None:
        h = head.final_norm(h)
    with model.materialized(model.parts.unembed):  # an offloaded head's weights are loaded for this product
        h = h.to(model.unembedding_matrix.device)
        logits = (h @ model.unembedding_matrix.T).float()
        bias = getattr(model.parts.unembed, "bias", None)
        if bias is not None:  # e.g. Phi-2's output head
            logits = logits + bias.float()
    return head.logits(logits)


@torch.inference_mode()
def lens_readout(
    model: Model,
    residuals: np.ndarray,
    *,
    k: int = 5,
    target: int | None = None,
    normed_from: int | None = None,
    chunk: int = 64,
) -> LensReadout:
    """Top-k tokens and the target's rank (1 = top) and probability for each row of ``residuals (L, d_model)``.

    Ranks and top-k lists follow one order (:mod:`~layerscope.capture.token_rank`: logit descending, tied
    logits by token id), so every token has its own rank and the rank-1 token heads the top-k list.

    ``normed_from``: index of the first row that is already after the final norm (skip re-norming it).
    Rows are decoded ``chunk`` at a time: one matrix product per chunk reads the unembedding once,
    and at most ``(chunk, vocab)`` logits live at once.
    """
    rows = np.asarray(residuals)
    split = len(rows) if normed_from is None else normed_from
    top_ids, top_probs, ranks, probs = [], [], [], []
    for begin in range(0, len(rows), chunk):
        end = min(begin + chunk, len(rows))
        parts = []
        if begin < split:
            parts.append(lens_logits(model, rows[begin : min(end, split)]))
        if end > split:
            parts.append(lens_logits(model, rows[max(begin, split) : end], normed=True))
        logits = torch.cat(parts)  # (rows, vocab)
        p = torch.softmax(logits, dim=-1)
        _, ids = top_tokens(logits, k)  # (rows, k), in rank order (ties by token id)
        top_ids.append(ids.cpu().numpy())
        top_probs.append(p.gather(1, ids).cpu().numpy())
        if target is not None:
            targets = torch.full((len(logits),), target, dtype=torch.long, device=logits.device)
            ranks.append(token_ranks(logits, targets).cpu().numpy())
            probs.append(p[:, target].cpu().numpy())
    return LensReadout(
        top_ids=np.concatenate(top_ids),
        top_probs=np.concatenate(top_probs),
        target_rank=np.concatenate(ranks) if target is not None else None,
        target_prob=np.concatenate(probs) if target is not None else None,
    )
