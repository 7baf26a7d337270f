"""Hugging Face's own answers, used as oracles by several tests."""

from __future__ import annotations

import torch


def hf_greedy(model, ids: list[int], n: int) -> list[int]:
    """The ``n`` tokens ``transformers``' own ``generate`` picks greedily after ``ids`` (no early stop)."""
    with torch.no_grad():
        out = model.module.generate(
            torch.tensor([ids]),
            attention_mask=torch.ones(1, len(ids), dtype=torch.long),
            max_new_tokens=n,
            min_new_tokens=n,
            do_sample=False,
            pad_token_id=model.tokenizer.pad_token_id or 0,
            eos_token_id=None,
        )
    return out[0, len(ids) :].tolist()
