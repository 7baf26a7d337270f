"""Hugging Face's own answers, used as oracles by several tests."""

from __future__ import annotations

import numpy as np
import torch


def hf_greedy(model, ids: list[int], n: int, *, module=None, use_cache: bool = True) -> list[int]:
    """The ``n`` tokens ``transformers``' own ``generate`` picks greedily after ``ids`` (no early stop), from
    ``model.module`` or another ``module`` (e.g. a copy with blocks removed) with ``model``'s tokenizer."""
    with torch.no_grad():
        out = (module if module is not None else model.module).generate(
            torch.tensor([ids]),
            attention_mask=torch.ones(1, len(ids), dtype=torch.long),
            max_new_tokens=n,
            min_new_tokens=n,
            do_sample=False,
            use_cache=use_cache,
            pad_token_id=model.tokenizer.pad_token_id or 0,
            eos_token_id=None,
        )
    return out[0, len(ids) :].tolist()


def hf_hidden_states(model, ids: list[int]) -> list[np.ndarray]:
    """HF's hidden states of one unpadded prompt, plus the pre-norm output of the last layer at the end."""
    with torch.no_grad():
        out = model.module(input_ids=torch.tensor([ids]), output_hidden_states=True)
        states = [h[0].float().numpy() for h in out.hidden_states]
        config = model.module.config
        saved = getattr(config, "tie_last_hidden_states", None)
        config.tie_last_hidden_states = False  # HF then keeps the last layer's own output, before the norm
        try:
            raw = model.module(input_ids=torch.tensor([ids]), output_hidden_states=True).hidden_states[-1]
        finally:
            config.tie_last_hidden_states = saved
    return states + [raw[0].float().numpy()]
