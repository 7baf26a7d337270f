"""Next-token agreement of a model with a reference at the read positions: top-1 agreement and KL.

The logits are each model's own final logits at the read positions of a capture: the final norm's output
through the unembedding (no other position's logits are computed), in chunks of :data:`LOGIT_CHUNK` rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ..errors import LayerscopeError
from .logit_lens import lens_logits

if TYPE_CHECKING:
    from .read_positions import Capture

#: read positions whose next-token log-probabilities are computed at once (one pass over the unembedding each)
LOGIT_CHUNK = 64


def _log_probs(model, capture: Capture, rows: slice):
    """Next-token log-probabilities ``(rows, vocab)`` float32 at the read positions of ``rows`` of a capture:
    the final norm's output through the unembedding (the model's own final logits there)."""
    import torch

    normed = capture.layers[-1] == "norm"
    with torch.inference_mode():
        logits = lens_logits(model, capture.residuals[-1, rows], normed=normed)
        return torch.log_softmax(logits, dim=-1)


@dataclass
class NextTokens:
    """The reference's next-token log-probabilities at the read positions (only while comparing).

    Attributes:
        log_probs: ``(item, vocab)`` float32 torch tensor.
        top1: ``(item,)`` int: the reference's top-1 token id per input.
    """

    log_probs: object  # torch.Tensor (item, vocab) float32
    top1: np.ndarray


def reference_next_tokens(model, capture: Capture) -> NextTokens:
    """The reference's next-token distribution at the last captured layer (``capture.residuals[-1]``,
    ``(item, d_model)``): log-probabilities ``(item, vocab)`` and top-1 ids ``(item,)``."""
    import torch

    chunks = [_log_probs(model, capture, slice(i, i + LOGIT_CHUNK)) for i in range(0, len(capture.ids), LOGIT_CHUNK)]
    log_probs = torch.cat(chunks)
    return NextTokens(log_probs=log_probs, top1=log_probs.argmax(dim=-1).cpu().numpy())


def next_token_agreement(model, capture: Capture, reference: NextTokens) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per input, three ``(item,)`` arrays: KL(reference || model) in nats (float32), the model's top-1 token
    id (int) and its probability (float32). ``capture`` is the model's own, over the reference's inputs."""
    import torch

    kl, top1, p_top1 = [], [], []
    for i in range(0, len(capture.ids), LOGIT_CHUNK):
        other = _log_probs(model, capture, slice(i, i + LOGIT_CHUNK))
        ref = reference.log_probs[i : i + LOGIT_CHUNK].to(other.device)
        if other.shape[-1] != ref.shape[-1]:
            raise LayerscopeError(f"vocabularies of {other.shape[-1]} and {ref.shape[-1]} tokens")
        kl.append((torch.exp(ref) * (ref - other)).sum(dim=-1).clamp(min=0).cpu().numpy())
        best = other.max(dim=-1)
        top1.append(best.indices.cpu().numpy())
        p_top1.append(torch.exp(best.values).cpu().numpy())
    return np.concatenate(kl), np.concatenate(top1), np.concatenate(p_top1)
