"""Restore one block's activations from a reference model's run into another model's run of the same prompt.

The question of quantization forensics: "restoring block k's output from the float32 reference gives back x
of the answer in its 4-bit copy". One prompt runs through both models (same tokenizer, depth and width, see
:func:`~.patching.check_source_model`); for each site, the studied model's run is repeated with that site's
activation replaced, at every position at once, by the reference's; the last position's logits are scored.

Sites (``parts``), each at every position:

* ``resid``: depth ``d`` = ``0`` (the embedding output, ``embed``) .. ``n_layers`` (block ``n - 1``'s output).
  Restoring depth ``k + 1`` ("block ``k``'s output") replaces everything the blocks up to ``k`` computed, so
  the error left is what the blocks above ``k`` and the head add;
* ``attn`` / ``mlp``: block ``k``'s attention / MLP output alone (its residual addition), the rest of the
  studied model's run its own.

Runs on :class:`~.patching.PatchEngine` (one batch of ``batch_size`` sites per forward). With the same model
twice every restored score equals the model's own.

Example:
    >>> out = restore_blocks(quantized, reference, quantized.encode("The capital of France is"))
    >>> out.table("kl")                          # part, layer, depth, value, normalized
    >>> out.table("logit-diff", answer=paris, wrong=rome)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from ..errors import LayerscopeError
from .layer_spec import layer_name
from .patching import Cell, PairIds, PatchEngine, metric_values

RESTORE_PARTS = ("resid", "attn", "mlp")


@dataclass(frozen=True)
class Restoration:
    """The last position's logits of the studied model's run with each site restored from the reference.

    Attributes:
        scores: ``{part: (sites, vocab)}`` float32 logits; ``resid`` has ``n_layers + 1`` rows (depth 0 = embed
            .. n), ``attn`` and ``mlp`` ``n_layers`` (block 0 .. n - 1).
        reference: ``(vocab,)`` the reference model's logits of the prompt (nothing patched).
        model: ``(vocab,)`` the studied model's own logits of the prompt.
    """

    scores: dict[str, torch.Tensor]
    reference: torch.Tensor
    model: torch.Tensor

    def values(self, metric: str = "kl", *, answer: int | None = None, wrong: int | None = None) -> dict:
        """``{"reference": float, "model": float, part: (sites,) float64}`` of ``metric``: ``kl`` (from the
        reference's next-token distribution; the reference's is 0), ``logit-diff`` (needs ``answer`` and
        ``wrong`` ids), ``prob`` (needs ``answer``)."""
        needs = {"logit-diff": ("answer", "wrong"), "prob": ("answer",)}.get(metric, ())
        for name in needs:
            if {"answer": answer, "wrong": wrong}[name] is None:
                raise LayerscopeError(f"metric {metric!r} needs the {name} token's id; give {name}=")

        def of(scores: torch.Tensor) -> np.ndarray:
            return metric_values(scores, self.reference[None], metric, True, answer or 0, wrong or 0)

        out: dict = {"reference": float(of(self.reference[None])[0]), "model": float(of(self.model[None])[0])}
        out.update({part: of(scores) for part, scores in self.scores.items()})
        return out

    def table(self, metric: str = "kl", *, answer: int | None = None, wrong: int | None = None) -> pd.DataFrame:
        """One row per site: ``part, layer`` (``embed``, ``0``.. for resid; the block for attn/mlp), ``depth``
        (resid: the depth; attn/mlp: ``block + 1``), ``value`` (the metric with that site restored) and
        ``normalized`` = (value - model) / (reference - model): the share of the gap between the two models'
        runs that restoring that site closes (NaN where the two runs agree). ``reference_value`` and
        ``model_value`` are in ``table.attrs``."""
        values = self.values(metric, answer=answer, wrong=wrong)
        ref, own = values["reference"], values["model"]
        rows = []
        for part, scores in self.scores.items():
            for site, value in enumerate(values[part]):
                gap = ref - own
                rows.append(
                    {
                        "part": part,
                        "layer": layer_name(site) if part == "resid" else str(site),
                        "depth": site if part == "resid" else site + 1,
                        "value": float(value),
                        "normalized": float((value - own) / gap) if gap != 0 else float("nan"),
                    }
                )
        table = pd.DataFrame(rows, columns=["part", "layer", "depth", "value", "normalized"])
        table.attrs.update(reference_value=ref, model_value=own, metric=metric)
        return table


def restore_blocks(
    model,
    reference,
    ids: Sequence[int],
    *,
    parts: Sequence[str] = ("resid",),
    batch_size: int = 64,
) -> Restoration:
    """Run ``ids`` through ``reference`` and ``model``; for every site of ``parts`` (every depth of the residual
    stream, every block's attention / MLP output), rerun ``model`` with that site's activations at every
    position taken from ``reference``'s run, and keep the last position's logits.

    Args:
        model: the studied :class:`~layerscope.Model` (e.g. a 4-bit copy); its runs are patched.
        reference: the :class:`~layerscope.Model` the activations come from (e.g. the float32 original): the
            same tokenizer, depth and hidden size, else :class:`LayerscopeError` in one line before any run.
        ids: the prompt's token ids ``(T,)`` (with BOS where the model has one, as ``model.encode`` gives).
        parts: any of ``resid``, ``attn``, ``mlp``.
        batch_size: sites per forward.

    Returns:
        :class:`Restoration`: ``scores[part]`` ``(sites, vocab)``; ``.table(metric)`` gives per-site metrics.
    """
    for part in parts:
        if part not in RESTORE_PARTS:
            raise LayerscopeError(f"unknown part {part!r}; valid: {', '.join(RESTORE_PARTS)}")
    ids = tuple(int(i) for i in ids)
    if not ids:
        raise LayerscopeError("the prompt has no tokens")
    pair = PairIds(ids, ids, 0, 0)
    engine = PatchEngine(
        model, pair, parts=tuple(parts), full_vocab=True, batch_size=batch_size, source_model=reference
    )
    scores = {}
    for part in parts:
        cells = [Cell(part, site, None) for site in engine.sites_of(part)]
        scores[part] = engine.run_cells(cells, "denoise")
    return Restoration(scores=scores, reference=engine.source_clean.scores, model=engine.corrupt.scores)
