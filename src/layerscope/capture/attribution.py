"""Attribution patching: the first-order (gradient) estimate of every patching cell from one forward and one backward.

Exact patching reruns the model once per cell. Attribution patching (Nanda, "Attribution Patching: Activation
Patching At Industrial Scale", 2023) takes the metric ``m`` of the base run as a function of one site's
activation ``a`` and replaces it by its tangent at the base run:

    m(patched) ~= m(base) + (a_source - a_base) . dm/da |base

where the product sums over the site's width (``resid``, ``attn``, ``mlp``: ``d_model``; ``heads``: the head's
``head_dim`` slice) at the patched position (or over every position when ``position`` is None). One forward of the
source prompt (no gradient) records every ``a_source``; one forward of the base prompt with the gradient on and
one backward of its metric give every ``a_base`` and ``dm/da`` at once, for all sites of all parts.

The sites are those of :mod:`~.patching` (``resid`` at depth ``d``: block ``d``'s input, ``embed`` for 0; ``attn`` /
``mlp``: block ``k``'s sub-module output; ``heads``: the output projection's input), found the same way. The
estimate is exact for a metric linear in the site (e.g. the logit difference patched at the last block's
output); elsewhere it is only a first pass to choose the cells worth patching exactly.

Example:
    >>> estimate = AttributionPatching(model, pair_ids, metric="logit-diff")
    >>> estimate.values([Cell("resid", 3, 7)], "denoise")      # (cells,) the estimated metric
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

import numpy as np
import torch

from ..errors import LayerscopeError
from .patching import (
    DIRECTIONS,
    METRICS,
    PARTS,
    Cell,
    PairIds,
    check_source_model,
    head_layout,
    metric_values,
    recording_sites,
)


class AttributionPatching:
    """The attribution estimate of patching cells for one pair.

    Args:
        model: the patched :class:`~layerscope.Model` (its gradient is taken at the base run).
        pair: the pair's ids.
        parts: the parts whose sites are recorded.
        metric: ``logit-diff``, ``prob`` or ``kl`` (from the clean run's next-token distribution).
        source_model: the model whose runs give the source activations (see :class:`~.patching.PatchEngine`).

    Attributes:
        scores: ``{(model, prompt): (vocab,)}`` last-position logits of the runs made, ``model`` 0 for
            ``model`` and 1 for the source model, ``prompt`` ``"clean"`` or ``"corrupt"``.
    """

    def __init__(
        self, model, pair: PairIds, *, parts: Sequence[str] = PARTS, metric: str = "logit-diff", source_model=None
    ):
        for part in parts:
            if part not in PARTS:
                raise LayerscopeError(f"unknown part {part!r}; valid: {', '.join(PARTS)}")
        if metric not in METRICS:
            raise LayerscopeError(f"unknown metric {metric!r}; valid: {', '.join(METRICS)}")
        if len(pair.clean) != len(pair.corrupt):
            raise LayerscopeError("the clean and corrupt prompts have different token lengths")
        if source_model is model:
            source_model = None
        if not pair.changed and source_model is None:
            raise LayerscopeError("the clean and corrupt prompts are the same tokens")
        if source_model is not None:
            check_source_model(model, source_model, heads="heads" in parts)
        self.model, self.source_model, self.pair = model, source_model, pair
        self.parts, self.metric = tuple(parts), metric
        self.n_layers = model.n_layers
        self._heads = head_layout(model) if "heads" in self.parts else (0, 0)
        self.scores: dict[tuple[int, str], torch.Tensor] = {}
        self._runs: dict[str, tuple[dict, dict, float]] = {}  # direction -> (source sites, base sites x grads, base m)

    @property
    def n_heads(self) -> int:
        return self._heads[0]

    def sites_of(self, part: str) -> list[int]:
        """The layers of ``part``: depths ``0..n_layers`` for ``resid``, blocks ``0..n_layers-1`` otherwise."""
        return list(range(self.n_layers + 1)) if part == "resid" else list(range(self.n_layers))

    # ----- runs ----------------------------------------------------------------------------------
    def logits(self, which: int, prompt: str) -> torch.Tensor:
        """``(vocab,)`` float32 last-position logits of ``prompt`` run through the model (0) or the source (1)."""
        key = (which, prompt)
        if key not in self.scores:
            model = self.source_model if which == 1 and self.source_model is not None else self.model
            with torch.inference_mode():
                self.scores[key] = self._forward(model, getattr(self.pair, prompt), {})[0].detach().float().cpu()
        return self.scores[key]

    def ends(self, direction: str) -> tuple[torch.Tensor, torch.Tensor]:
        """``(clean, corrupt)`` logits of the runs whose metric is 1 and 0 of ``normalized`` (as
        :meth:`~.patching.PatchEngine.ends`)."""
        source = 1 if self.source_model is not None else 0
        if direction == "denoise":
            return self.logits(source, "clean"), self.logits(0, "corrupt")
        return self.logits(0, "clean"), self.logits(source, "corrupt")

    def _forward(self, model, ids: Sequence[int], found: dict) -> torch.Tensor:
        """``(1, vocab)`` last-position logits of ``ids`` through ``model``, each site of ``parts`` in ``found``
        (``{(part, layer): (T, width)}``, in the autograd graph when the gradient is on)."""
        with self._recording(model, found):
            out = model.module(input_ids=torch.tensor([list(ids)], device=model.device), use_cache=False)
        return out.logits[:, -1]

    @contextlib.contextmanager
    def _recording(self, model, found: dict) -> Iterator[None]:
        """Hooks that put every site in ``found``; block 0's input is made a leaf that asks for its gradient, so
        that every site above it is in the graph without any weight asking for one."""
        grad = torch.is_grad_enabled()

        def leaf(x: torch.Tensor) -> torch.Tensor:
            return x.detach().requires_grad_(True) if grad else x

        with recording_sites(model, self.parts, found, embed=leaf):
            yield

    def _metric(self, logits: torch.Tensor, clean: torch.Tensor) -> torch.Tensor:
        """The metric of ``logits`` ``(vocab,)``, differentiable (as :func:`~.patching.metric_values`)."""
        if self.metric == "logit-diff":
            return logits[self.pair.answer] - logits[self.pair.wrong]
        logp = torch.log_softmax(logits.double(), dim=-1)
        if self.metric == "prob":
            return logp[self.pair.answer].exp()
        ref = torch.log_softmax(clean.double(), dim=-1)
        return (ref.exp() * (ref - logp)).sum()

    def _run(self, direction: str) -> tuple[dict, dict, float]:
        """The source run's sites, the base run's ``(activation, gradient)`` per site, and its metric."""
        if direction not in DIRECTIONS:
            raise LayerscopeError(f"unknown direction {direction!r}; valid: {', '.join(DIRECTIONS)}")
        if direction in self._runs:
            return self._runs[direction]
        base_prompt, source_prompt = ("corrupt", "clean") if direction == "denoise" else ("clean", "corrupt")
        source_key = (1 if self.source_model is not None else 0, source_prompt)
        source_sites: dict = {}
        with torch.inference_mode():
            logits = self._forward(self.source_model or self.model, getattr(self.pair, source_prompt), source_sites)
            self.scores[source_key] = logits[0].float().cpu()
        base_sites: dict = {}
        with torch.enable_grad():
            logits = self._forward(self.model, getattr(self.pair, base_prompt), base_sites)[0].float()
            clean = self.scores[source_key].to(logits.device) if direction == "denoise" else logits.detach()
            value = self._metric(logits, clean)
            keys = list(base_sites)
            grads = torch.autograd.grad(value, [base_sites[k] for k in keys], allow_unused=True)
        self.scores[(0, base_prompt)] = logits.detach().cpu()
        sites = {}
        with torch.no_grad():
            for key, grad in zip(keys, grads):
                activation = base_sites[key].detach()[0]
                gradient = torch.zeros_like(activation) if grad is None else grad[0]
                delta = source_sites[key][0].to(activation.device, activation.dtype) - activation
                sites[key] = (delta.float() * gradient.float()).cpu()  # (T, width): each coordinate's share
        self._runs[direction] = (source_sites, sites, float(value.detach()))
        return self._runs[direction]

    # ----- estimates -----------------------------------------------------------------------------
    def values(self, cells: Sequence[Cell], direction: str = "denoise") -> np.ndarray:
        """``(cells,)`` float64: the estimated metric with each cell patched alone: the base run's metric plus
        the sum, over the cell's positions and width, of (source - base activation) x the metric's gradient."""
        _, sites, base = self._run(direction)
        head_dim = self._heads[1]
        out = np.empty(len(cells))
        for i, cell in enumerate(cells):
            if cell.part not in self.parts:
                raise LayerscopeError(f"part {cell.part!r} was not recorded; valid: {', '.join(self.parts)}")
            share = sites[cell.part, cell.layer]  # (T, width)
            if cell.head is not None:
                share = share[:, cell.head * head_dim : (cell.head + 1) * head_dim]
            if cell.position is not None:
                share = share[cell.position]
            out[i] = base + float(share.double().sum())
        return out

    def end_values(self, direction: str) -> tuple[float, float]:
        """The metric of the clean and of the corrupt run (as ``normalized``'s 1 and 0)."""
        clean, corrupt = self.ends(direction)
        args = (clean[None], self.metric, True, self.pair.answer, self.pair.wrong)
        return float(metric_values(clean[None], *args)[0]), float(metric_values(corrupt[None], *args)[0])
