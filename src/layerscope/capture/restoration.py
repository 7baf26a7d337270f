"""Restoring parts of a quantized model to the reference's weights, or one block's output to the reference's
activation, and reading the next-token distribution at the read positions.

One torch module serves both models: the reference's, whose parameters that differ in the quantized copy get the
quantized values (``quantized``: ``{parameter name: tensor}``) while the engine runs and their own back when it
closes. A *part* is a set of parameters restored together (block 3's ``q_proj``, the embedding).

Cost. The quantized run records the hidden states entering every block ``(batch, pos, d_model)``. Restoring a
part of block ``k`` changes nothing below ``k``: the blocks below return at once (they pass their input) and
block ``k`` receives the recorded input, so only blocks ``k..n-1`` compute. Restoring block ``k``'s *output*
(the activation view) feeds the reference run's output of block ``k`` into block ``k + 1`` (the final norm after
the last block). The output embedding computes the read positions only (one row per prompt).

Prompts are sorted by length and padded on the right within a batch, with an attention mask, so each starts at
position 0 as when it runs alone; the read position of a prompt is its last token.

Example:
    >>> engine = RestorationEngine(model, quantized, prompts)   # runs the reference and the quantized model
    >>> engine.quantized_scores.kl.mean()                        # KL(reference || quantized) per prompt
    >>> engine.restore(engine.parts[3]).kl.mean()                # with that part back at the reference's weights
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import LayerscopeError
from .ablation import _hidden
from .patching import _instance_forward, _passing, _rest_into, _with_hidden, recording_sites

#: the tensor kinds of a block, in the order tables and figures show them (others follow by name)
KIND_ORDER = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
#: the kind of the input embedding (shared with the output embedding where the two are tied)
EMBED = "embed"


@dataclass(frozen=True)
class Part:
    """Parameters restored together: ``kind`` of block ``block`` (None: the embedding), by parameter name."""

    block: int | None
    kind: str
    names: tuple[str, ...]

    @property
    def label(self) -> str:
        return self.kind if self.block is None else f"{self.block}.{self.kind}"


@dataclass
class Scores:
    """Next-token agreement with the reference at each prompt's read position.

    Attributes:
        kl: ``(item,)`` float64, KL(reference || model) in nats.
        top1: ``(item,)`` int64, the model's top-1 token.
        agrees: ``(item,)`` bool, whether it is the reference's top-1 token.
    """

    kl: np.ndarray
    top1: np.ndarray
    agrees: np.ndarray


@dataclass
class _Batch:
    rows: list[int]  # the prompts' indices, in batch order
    ids: torch.Tensor  # (batch, pos)
    mask: torch.Tensor  # (batch, pos)
    read: torch.Tensor  # (batch,) each prompt's last position


def find_parts(model, names: Sequence[str]) -> list[Part]:
    """The parts among parameters ``names``: each block's linear weights by the module's own name (``q_proj``,
    ...), and the input embedding; parameters of other kinds (norms) are not parts."""
    layers = model.layers
    prefix_of = {}
    for full, module in model.module.named_modules():
        for k, layer in enumerate(layers):
            if module is layer:
                prefix_of[k] = full + "."
    embed = next((n for n, m in model.module.named_modules() if m is model.parts.embed), None)
    found: dict[tuple[int | None, str], list[str]] = {}
    modules = dict(model.module.named_modules())
    for name in names:
        module_name, _, leaf = name.rpartition(".")
        if module_name == embed and leaf == "weight":
            found.setdefault((None, EMBED), []).append(name)
            continue
        if leaf != "weight" or not isinstance(modules.get(module_name), torch.nn.Linear):
            continue
        for k, prefix in prefix_of.items():
            if name.startswith(prefix):
                found.setdefault((k, module_name.rpartition(".")[2]), []).append(name)
    parts = [Part(block, kind, tuple(ns)) for (block, kind), ns in found.items()]
    return sorted(parts, key=lambda p: (-1 if p.block is None else p.block, kind_rank(p.kind), p.kind))


def kind_rank(kind: str) -> int:
    """A kind's place in :data:`KIND_ORDER` (the embedding first, unknown kinds last)."""
    if kind == EMBED:
        return -1
    return KIND_ORDER.index(kind) if kind in KIND_ORDER else len(KIND_ORDER)


class RestorationEngine:
    """The reference and the quantized model in one module, one part restored at a time.

    Args:
        model: the reference (:class:`~layerscope.Model` with an LM head); its weights are put back on
            :meth:`close` (or leaving ``with``).
        quantized: ``{parameter name: tensor}``, the quantized copy's values of the parameters that differ
            (shapes of the reference's).
        prompts: token ids of each prompt (read at its last token).
        batch_size: prompts per forward.
    """

    def __init__(
        self,
        model,
        quantized: Mapping[str, torch.Tensor],
        prompts: Sequence[Sequence[int]],
        batch_size: int = 16,
    ):
        params = dict(model.module.named_parameters())
        for name, value in quantized.items():
            if name not in params:
                raise LayerscopeError(f"the reference has no parameter {name!r}")
            if tuple(value.shape) != tuple(params[name].shape):
                raise LayerscopeError(
                    f"{name} is {tuple(value.shape)} in the quantized model, {tuple(params[name].shape)} in the "
                    "reference; give a quantized copy of the reference"
                )
        if not prompts or any(len(p) == 0 for p in prompts):
            raise LayerscopeError("every prompt needs at least one token")
        self.model = model
        self.n_layers = model.n_layers
        self.params = {name: params[name] for name in quantized}
        self.reference_values = {name: p.data for name, p in self.params.items()}
        self.quantized_values = {
            name: quantized[name].detach().to(device=p.device, dtype=p.dtype) for name, p in self.params.items()
        }
        self.parts = find_parts(model, list(self.params))
        self.n_items = len(prompts)
        self._batches = self._make_batches([tuple(p) for p in prompts], batch_size)
        self._ref_outputs: list[dict[int, torch.Tensor]] = []  # per batch: block k -> its output (reference)
        self._q_inputs: list[dict[int, torch.Tensor]] = []  # per batch: block k -> its input (quantized)
        self._q_rests: list[dict[int, tuple | None]] = []  # per batch: what block k returns beside it (quantized)
        with torch.inference_mode():
            self._set(self.reference_values)
            self.reference_log_probs = self._run(record=self._ref_outputs, outputs=True)
            self.reference_top1 = self.reference_log_probs.argmax(-1).numpy()
            self._set(self.quantized_values)
            self.quantized_scores = self.score(self._run(record=self._q_inputs, outputs=False, rests=self._q_rests))

    # ----- weights -------------------------------------------------------------------------------
    def _set(self, values: Mapping[str, torch.Tensor]) -> None:
        for name, value in values.items():
            self.params[name].data = value

    def close(self) -> None:
        """Put the reference's weights back into the model."""
        self._set(self.reference_values)

    def __enter__(self) -> RestorationEngine:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @contextlib.contextmanager
    def weights(self, values: Mapping[str, torch.Tensor]) -> Iterator[None]:
        """Within the block, the parameters in ``values`` hold those tensors (the others stay quantized)."""
        self._set({n: v.to(device=self.params[n].device, dtype=self.params[n].dtype) for n, v in values.items()})
        try:
            yield
        finally:
            self._set({n: self.quantized_values[n] for n in values if n in self.quantized_values})
            self._set({n: self.reference_values[n] for n in values if n not in self.quantized_values})

    # ----- batches -------------------------------------------------------------------------------
    def _make_batches(self, prompts: list[tuple[int, ...]], batch_size: int) -> list[_Batch]:
        pad = getattr(self.model.tokenizer, "pad_token_id", None)
        pad = 0 if pad is None else int(pad)
        order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
        batches = []
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            width = max(len(prompts[i]) for i in rows)
            ids = torch.full((len(rows), width), pad, dtype=torch.long)
            mask = torch.zeros((len(rows), width), dtype=torch.long)
            for r, i in enumerate(rows):
                ids[r, : len(prompts[i])] = torch.tensor(prompts[i])
                mask[r, : len(prompts[i])] = 1
            read = torch.tensor([len(prompts[i]) - 1 for i in rows])
            batches.append(_Batch(rows, ids, mask, read))
        return batches

    # ----- forward -------------------------------------------------------------------------------
    def _run(
        self,
        *,
        start: int | None = None,
        feed: list[dict[int, torch.Tensor]] | None = None,
        record: list | None = None,
        outputs: bool = False,
        rests: list | None = None,
    ) -> torch.Tensor:
        """Log-probabilities ``(item, vocab)`` float32 at the read positions, in prompt order.

        ``start``/``feed``: blocks below ``start`` pass their input and block ``start`` (the final norm or the
        head when ``start == n_layers``) receives ``feed[batch][start]``. ``record``: a list that receives per
        batch the input (``outputs=False``) or the output (``outputs=True``) of every block; ``rests``: one that
        receives per batch what every block returns beside its residual stream (see :func:`~.patching._rest_into`).
        Blocks below ``start`` hand on what the quantized run's returned beside it (Zaya's router state).
        """
        out: torch.Tensor | None = None
        for b, batch in enumerate(self._batches):
            found: dict[int, torch.Tensor] = {}
            others: dict[int, tuple | None] = {}
            with contextlib.ExitStack() as stack:
                if record is not None:
                    stack.enter_context(self._recording(found, outputs))
                if rests is not None:
                    stack.enter_context(recording_sites(self.model, (), {}, on_block_output=_rest_into(others)))
                if start is not None:
                    stack.enter_context(self._from_block(start, feed[b][start], self._q_rests[b]))
                stack.enter_context(self._head(batch))
                logits = self._call(batch)
            if record is not None:
                record.append(found)
            if rests is not None:
                rests.append(others)
            log_probs = torch.log_softmax(logits.float(), dim=-1).cpu()
            if out is None:
                out = torch.empty((self.n_items, log_probs.shape[-1]), dtype=torch.float32)
            out[batch.rows] = log_probs
        return out

    def _call(self, batch: _Batch) -> torch.Tensor:
        device = self.model.device
        result = self.model.module(
            input_ids=batch.ids.to(device), attention_mask=batch.mask.to(device), use_cache=False
        )
        logits = result.logits
        if logits.shape[1] == 1:  # the head computed the read positions only
            return logits[:, 0]
        return logits[torch.arange(len(batch.rows)), batch.read.to(logits.device)]

    @contextlib.contextmanager
    def _head(self, batch: _Batch) -> Iterator[None]:
        """The output embedding computes each prompt's read position only; the model's own transforms after it
        (a soft-cap) act elementwise on what it returns."""
        unembed = self.model.parts.unembed
        if not isinstance(unembed, torch.nn.Linear):
            yield
            return
        rows = torch.arange(len(batch.rows))

        def forward(x):  # (batch, pos, d_model) -> (batch, 1, vocab)
            picked = x[rows.to(x.device), batch.read.to(x.device)][:, None]
            return F.linear(picked, unembed.weight, unembed.bias)

        with _instance_forward(unembed, forward):
            yield

    @contextlib.contextmanager
    def _recording(self, found: dict[int, torch.Tensor], outputs: bool) -> Iterator[None]:
        handles = []

        def pre(k):
            def hook(module, args, kwargs):
                found[k] = _hidden(args, kwargs).detach().clone()

            return hook

        def post(k):
            def hook(module, args, output):
                found[k] = (output[0] if isinstance(output, (tuple, list)) else output).detach().clone()

            return hook

        try:
            if outputs:  # the embedding output, as "block -1's output"
                first = pre(-1)
                handles.append(self.model.layers[0].register_forward_pre_hook(first, with_kwargs=True))
            for k, layer in enumerate(self.model.layers):
                if outputs:
                    handles.append(layer.register_forward_hook(post(k)))
                else:
                    handles.append(layer.register_forward_pre_hook(pre(k), with_kwargs=True))
            yield
        finally:
            for handle in handles:
                handle.remove()

    @contextlib.contextmanager
    def _from_block(self, start: int, hidden: torch.Tensor, rests: dict[int, tuple | None]) -> Iterator[None]:
        """Blocks below ``start`` pass their input, with what block ``k`` returned beside it in the quantized run
        (``rests[k]``); block ``start`` (the final norm, or the head, past the last block) receives ``hidden`` as
        its input."""
        layers = self.model.layers
        if start < self.n_layers:
            target = layers[start]
        else:
            target = self.model.final_norm or self.model.parts.unembed

        def feed(module, args, kwargs):
            return _with_hidden(args, kwargs, hidden)

        handle = target.register_forward_pre_hook(feed, with_kwargs=True)
        try:
            with contextlib.ExitStack() as stack:
                for k in range(min(start, self.n_layers)):
                    stack.enter_context(_instance_forward(layers[k], _passing(rests.get(k))))
                yield
        finally:
            handle.remove()

    # ----- what is measured ----------------------------------------------------------------------
    def score(self, log_probs: torch.Tensor) -> Scores:
        """KL(reference || ``log_probs``) and top-1 agreement per prompt (``log_probs``: ``(item, vocab)``)."""
        ref = self.reference_log_probs.double()
        kl = (ref.exp() * (ref - log_probs.double())).sum(-1).clamp(min=0).numpy()
        top1 = log_probs.argmax(-1).numpy()
        return Scores(kl=kl, top1=top1, agrees=top1 == self.reference_top1)

    @torch.inference_mode()
    def restore(self, part: Part) -> Scores:
        """The scores with ``part`` at the reference's weights, the rest quantized; only the blocks from the
        part's block on compute (the embedding: every block)."""
        with self.weights({n: self.reference_values[n] for n in part.names}):
            if part.block is None:
                return self.score(self._run())
            return self.score(self._run(start=part.block, feed=self._q_inputs))

    @torch.inference_mode()
    def restore_block(self, block: int) -> Scores:
        """The scores with every part of block ``block`` at the reference's weights at once (``-1``: the
        embedding); the quantized scores where none of its weights differ."""
        if not -1 <= block < self.n_layers:
            raise LayerscopeError(f"block {block} is not a block; valid: -1 (embed) to {self.n_layers - 1}")
        wanted = None if block < 0 else block
        names = tuple(n for part in self.parts if part.block == wanted for n in part.names)
        if not names:
            return self.quantized_scores
        return self.restore(Part(wanted, "block", names))

    @torch.inference_mode()
    def restore_output(self, block: int) -> Scores:
        """The scores of the quantized model with block ``block``'s output replaced by the reference run's
        (``-1``: the embedding output, the input of block 0); only the blocks above compute."""
        if not -1 <= block < self.n_layers:
            raise LayerscopeError(f"block {block} is not a block; valid: -1 (embed) to {self.n_layers - 1}")
        feed = [{k + 1: v for k, v in outputs.items()} for outputs in self._ref_outputs]
        return self.score(self._run(start=block + 1, feed=feed))

    @torch.inference_mode()
    def with_weights(self, values: Mapping[str, torch.Tensor]) -> Scores:
        """The scores with the parameters in ``values`` set to those tensors (a mixed-precision model): every
        block computes."""
        with self.weights(values):
            return self.score(self._run())
