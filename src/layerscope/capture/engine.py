"""The residual capture engine: hooks that keep only the asked positions of the asked layers.

Only the decoder stack runs (``model.parts.base``: no LM head, no unembedding), and it stops right
after the deepest layer asked for (a private exception raised from that layer's hook). Each hook
gathers the rows at the asked positions, pools the rows of a multi-token item (mean/first/last), and
writes them as float32 into a buffer preallocated once, shape ``(layer, item, d_model)``; nothing else
of the sequence is kept. Prompts are sorted by length and batched (cut where padding would cost more than
one more forward, see :mod:`.batching`) with padding on the right (the model counts positions as it does
for each prompt alone, so a padded prompt gives the numbers it gives alone).

Hook points, by depth (see :mod:`.layer_spec`): depth 0 (``embed``) is the input of decoder block 0
(a forward pre-hook: exactly what HF records as ``hidden_states[0]``), depth ``k + 1`` (block ``k``) the
output of decoder block ``k``, ``"norm"`` the output of the final norm. Hooks are removed in ``finally``.

A model placed by accelerate (``device_map``, CPU or disk offload) runs through its own hooks: each block
loads its weights when it runs, the rows read from a block on another device are copied to the buffer's.

Example:
    >>> prompts = prompts_at([model.encode(t) for t in texts], "last")
    >>> array = capture_residuals(model, prompts, parse_layers("all", model.n_layers))
    >>> array.shape            # (layer, item, d_model): embed and blocks 0..17
    (19, 256, 640)
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from .. import progress
from ..errors import LayerscopeError, choices_text
from ..models.block_check import check_blocks, stream_layout
from ..tokensets import check_policy
from .batching import padding_batches
from .deepest_block import at_rows, rows_only_parts
from .layer_spec import FINAL_NORM, LayerIndex
from .prompts import CapturePrompt
from .storage import allocate, discard, finish, parse_budget

PADDING_SIDES = ("right", "left")


class _StopForward(Exception):
    """Raised by the hook of the deepest layer asked for: nothing after it runs."""


@dataclass
class _BatchState:
    """What the hooks need for the batch in flight (rebuilt per batch)."""

    buffer: torch.Tensor  # (n_slots, max_items, d_model) float32, allocated once
    batch_index: torch.Tensor = field(default=None)  # (R,) row's batch entry
    seq_index: torch.Tensor = field(default=None)  # (R,) row's position in the padded sequence
    segments: torch.Tensor | None = None  # (R,) item of each row when some item pools several rows
    counts: torch.Tensor | None = None  # (n, 1) rows per item, for the mean
    n_items: int = 0
    shape: tuple[int, int] = (0, 0)  # (batch, pos) of the batch in flight

    flat_index: torch.Tensor = field(default=None)  # (R,) batch_index * pos + seq_index
    rows: torch.Tensor = field(default=None)  # (R',) the distinct values of flat_index, ascending

    def write(self, slot: int, hidden: torch.Tensor, norm=None) -> None:
        """Keep the read rows of ``hidden`` ``(batch, pos, d_model)`` in ``slot``, through ``norm`` if given
        (a per-position module, applied to the read rows only)."""
        flat = self.flat_index
        if hidden.device != flat.device:  # a block accelerate placed on another device
            flat = flat.to(hidden.device)
        rows = hidden.reshape(-1, hidden.shape[-1]).index_select(0, flat)  # (R, d_model)
        if norm is not None:
            rows = norm(rows.unsqueeze(0))[0]
        rows = rows.to(self.buffer.device)
        target = self.buffer[slot, : self.n_items]
        if self.segments is None:
            target.copy_(rows)
            return
        target.zero_()
        target.index_add_(0, self.segments, rows.float())
        target.div_(self.counts)


def _hidden_of(output, index: int, model, shape: tuple[int, int, int]) -> torch.Tensor:
    """The residual stream ``shape = (batch, pos, d_model)`` in what block ``index`` returned (a tensor or a
    tuple); ``LayerscopeError`` for anything else (several streams, a time-major layout), never a wrong row."""
    hidden = output[0] if isinstance(output, (tuple, list)) else output
    if not isinstance(hidden, torch.Tensor) or hidden.shape != shape:
        expected = tuple(shape)
        if isinstance(hidden, torch.Tensor):
            found, layout = tuple(hidden.shape), stream_layout(tuple(hidden.shape), expected)
        else:
            found, layout = type(hidden).__name__, "not a tensor"
        raise LayerscopeError(
            f"block {index} of {type(model.module).__name__} returns {found}, not one residual stream "
            f"(batch, pos, d_model) = {expected}: {layout}; such blocks are not supported"
        )
    return hidden


@contextlib.contextmanager
def _capture_hooks(model, layers: Sequence[LayerIndex], state: _BatchState) -> Iterator[None]:
    """Register one hook per asked layer; the deepest one stops the forward. Always removed.

    ``norm`` is the final norm applied to the last block's output (see :mod:`layerscope.models.head`: in
    some models that module sits in the head, outside the decoder stack that runs here).
    """
    depth = {index: (model.n_layers + 0.5 if index == FINAL_NORM else index) for index in layers}
    deepest = max(layers, key=depth.__getitem__)
    d_model = state.buffer.shape[-1]  # read once: ``model.d_model`` looks through the config
    handles = []

    def make(slot: int, stop: bool, pre: bool, index: int, norm=None):
        if pre:

            def pre_hook(module, args, kwargs):
                hidden = _hidden_of(args[0] if args else kwargs["hidden_states"], 0, model, (*state.shape, d_model))
                state.write(slot, hidden)
                if stop:
                    raise _StopForward

            return pre_hook

        def hook(module, args, output):
            hidden = _hidden_of(output, index, model, (*state.shape, d_model))
            state.write(slot, hidden, norm)
            if stop:
                raise _StopForward

        return hook

    try:
        last = model.n_layers - 1
        for slot, index in sorted(enumerate(layers), key=lambda item: depth[item[1]]):  # the norm's hook last
            stop = index == deepest
            if index == FINAL_NORM:
                norm = model.final_norm
                if norm is None:
                    what = getattr(model, "description", "a model")
                    raise LayerscopeError(
                        f"model {model.name!r} is {what} with no final norm, so it has no layer {FINAL_NORM!r}; "
                        f"give 'embed' and blocks 0..{model.n_layers - 1}"
                    )
                handles.append(model.layers[last].register_forward_hook(make(slot, stop, False, last, norm)))
            elif index == 0:
                hook = make(slot, stop, True, 0)
                handles.append(model.layers[0].register_forward_pre_hook(hook, with_kwargs=True))
            else:
                handles.append(model.layers[index - 1].register_forward_hook(make(slot, stop, False, index - 1)))
        yield
    finally:
        for handle in handles:
            handle.remove()


def _rows_only_parts(model, layers: Sequence[LayerIndex]) -> list[torch.nn.Module]:
    """The modules of the deepest block asked for that run at the read rows only, where that is exact (see
    :mod:`.deepest_block`); none when the deepest layer is ``embed``."""
    deepest = model.n_layers if FINAL_NORM in layers else max(layers)
    return rows_only_parts(model, deepest - 1) if deepest >= 1 else []


def _batches(prompts: Sequence[CapturePrompt], batch_size: int) -> list[list[int]]:
    """Prompt indices grouped into batches that waste the least on padding, longest first (memory peaks early;
    see :mod:`.batching`)."""
    return padding_batches([len(p.ids) for p in prompts], batch_size)


def _prepare(state: _BatchState, batch: list[CapturePrompt], pool: str, device, pad_id: int):
    """Pad the batch on the right, set the hooks' gather indices; returns the model inputs.

    No position ids are given: each prompt's tokens come first in its row, so the model counts their
    positions as it does for the prompt alone (from 0, from ``padding_idx + 1`` in RoBERTa-style models, or
    not at all in recurrent ones), and the padding after them never reaches them through a causal mask."""
    width = max(len(p.ids) for p in batch)
    input_ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    batch_rows, seq_rows, segments = [], [], []
    item = 0
    for b, prompt in enumerate(batch):
        shift = 0  # right padding: every prompt starts at position 0, as it does alone
        input_ids[b, shift : shift + len(prompt.ids)] = torch.tensor(prompt.ids)
        mask[b, shift : shift + len(prompt.ids)] = 1
        for group in prompt.groups:
            chosen = group[:1] if pool == "first" else group[-1:] if pool == "last" else group
            batch_rows += [b] * len(chosen)
            seq_rows += [p + shift for p in chosen]
            segments += [item] * len(chosen)
            item += 1
    state.n_items = item
    state.shape = (len(batch), width)
    state.batch_index = torch.tensor(batch_rows, device=device)
    state.seq_index = torch.tensor(seq_rows, device=device)
    state.flat_index = state.batch_index * width + state.seq_index
    state.rows = torch.unique(state.flat_index)
    if len(segments) == item:
        state.segments = state.counts = None
    else:
        seg = torch.tensor(segments, device=device)
        state.segments = seg
        state.counts = torch.bincount(seg, minlength=item).to(torch.float32).unsqueeze(1)
    return {"input_ids": input_ids.to(device), "attention_mask": mask.to(device)}


@torch.inference_mode()
def capture_residuals(
    model,
    prompts: Sequence[CapturePrompt],
    layers: Sequence[LayerIndex],
    *,
    pool: str = "mean",
    batch_size: int = 32,
    memory_budget: int | str | None = None,
    path=None,
    padding_side: str = "right",
    description: str | None = None,
) -> np.ndarray:
    """Residual-stream vectors at the prompts' groups of positions, shape ``(len(layers), n_items, d_model)``.

    Args:
        model: a :class:`layerscope.Model`.
        prompts: what to run and which positions to read (see :mod:`.prompts`); items come out in order,
            prompt by prompt, group by group.
        layers: depths (0 = ``embed``, ``k + 1`` = block ``k``, ``"norm"``; see :func:`.layer_spec.parse_layers`).
        pool: how the rows of a group of several positions become one vector: ``mean``, ``first``, ``last``.
        batch_size: prompts per forward.
        memory_budget: bytes (or ``"512MB"``); a larger result goes to a memory-mapped ``.npy`` on disk.
        path: keep the result as this ``.npy`` file (memory-mapped), whatever its size.
        padding_side: ``right`` or ``left``; accepted for both, the batch is always padded on the right (the
            numbers do not depend on it, and left padding would shift models that ignore position ids).

    Returns:
        float32 ``np.ndarray`` (a ``np.memmap`` when it went to disk).
    """
    check_policy(pool)
    if padding_side not in PADDING_SIDES:
        raise LayerscopeError(f"unknown padding side {padding_side!r}; valid: {choices_text(PADDING_SIDES)}")
    if batch_size < 1:
        raise LayerscopeError(f"batch size {batch_size} must be at least 1")
    if not layers:
        raise LayerscopeError("no layer to capture; give 'all' or names such as 'embed,0,6,-1'")
    if not prompts:
        raise LayerscopeError("no prompt to capture; give at least one")
    layers = list(layers)
    check_blocks(model)
    n_items = sum(p.n_items for p in prompts)
    starts = np.cumsum([0] + [p.n_items for p in prompts])
    batches = _batches(prompts, batch_size)
    max_items = max(sum(prompts[i].n_items for i in batch) for batch in batches)
    device = model.device
    pad_id = getattr(model.tokenizer, "pad_token_id", None) or 0

    parts = _rows_only_parts(model, layers)  # probed before the capture hooks are in place
    result = allocate((len(layers), n_items, model.d_model), parse_budget(memory_budget), path)
    state = _BatchState(buffer=torch.zeros((len(layers), max_items, model.d_model), dtype=torch.float32, device=device))
    steps = batches if len(batches) < 4 or description is None else progress.track(batches, description)
    try:
        with _capture_hooks(model, layers, state), at_rows(parts, lambda: (state.rows, state.shape)):
            for batch in steps:
                inputs = _prepare(state, [prompts[i] for i in batch], pool, device, pad_id)
                try:
                    model.parts.base(**inputs, use_cache=False)
                except _StopForward:
                    pass
                items = np.concatenate([np.arange(starts[i], starts[i + 1]) for i in batch])
                result[:, items] = state.buffer[:, : state.n_items].cpu().numpy()
    except BaseException:
        discard(path)
        raise
    return finish(result, path)
