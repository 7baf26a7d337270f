"""Logit lens: decode any layer's residual through the final norm and the unembedding.

For residuals captured before the final norm (the embedding output and each decoder layer's output),
``logits = unembed(final_norm(h))``, with the model's final logit soft-capping where its config has one
(Gemma 2). At the last layer this is exactly the model's own next-token logits.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..models import Model


@dataclass(frozen=True)
class LensReadout:
    """Logit-lens readout of ``L`` layers for one position.

    Attributes:
        top_ids: ``(L, k)`` token ids of the k most likely tokens per layer.
        top_probs: ``(L, k)`` their probabilities.
        target_rank: ``(L,)`` rank (0 = top) of the target token per layer, or None without a target.
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
    h = torch.as_tensor(np.asarray(residuals), dtype=model.dtype, device=model.device)
    if not normed and model.final_norm is not None:
        h = model.final_norm(h)
    logits = (h @ model.unembedding_matrix.T).float()
    cap = getattr(model.config, "final_logit_softcapping", None)
    if cap:
        logits = torch.tanh(logits / cap) * cap
    return logits


@torch.inference_mode()
def lens_readout(
    model: Model, residuals: np.ndarray, *, k: int = 5, target: int | None = None, normed_from: int | None = None
) -> LensReadout:
    """Top-k tokens and the target's rank/probability for each row of ``residuals (L, d_model)``.

    ``normed_from``: index of the first row that is already after the final norm (skip re-norming it).
    Rows are decoded one at a time so only one ``(vocab,)`` logit vector lives at once.
    """
    top_ids, top_probs, ranks, probs = [], [], [], []
    for index, row in enumerate(np.asarray(residuals)):
        normed = normed_from is not None and index >= normed_from
        logits = lens_logits(model, row[None], normed=normed)[0]
        p = torch.softmax(logits, dim=-1)
        values, ids = torch.topk(p, k)
        top_ids.append(ids.cpu().numpy())
        top_probs.append(values.cpu().numpy())
        if target is not None:
            ranks.append(int((logits > logits[target]).sum()))
            probs.append(float(p[target]))
    return LensReadout(
        top_ids=np.stack(top_ids),
        top_probs=np.stack(top_probs),
        target_rank=np.array(ranks) if target is not None else None,
        target_prob=np.array(probs) if target is not None else None,
    )
