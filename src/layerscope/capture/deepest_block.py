"""The deepest block asked for computes its residual update only at the rows that are read.

Nothing after the deepest block runs (the engine stops there), and of that block only the rows the hooks
read are kept. Its keys and values must be computed at every position (the read rows attend to all earlier
ones), but everything else the block adds to a row depends on that row alone: the attention's queries, its
output projection, and the MLP. Those three modules run on the read rows only: in the default model (Gemma 3
270M) they hold 94% of a block's weights, so with ``layers="all"`` at the last position of each prompt the
capture skips 5% of the whole forward's matrix products.

Each such module's ``forward`` is replaced, for the duration, by one that gathers the read rows
``(1, R, d_in)``, runs the real module on them, and scatters the result into zeros shaped
``(batch, pos, d_out)``; the rows that are not read hold zeros (their queries are zero, their attention
output is dropped by the output projection), and the block's output there is never read. An input that is
not ``(batch, pos, d_in)`` of the batch in flight runs whole.

The modules are found by name (the attention's ``q_proj``/``query``/..., its ``o_proj``/``out_proj``/...,
the block's ``mlp``/``feed_forward``/...), and used only where that is exact: a probe (two prompts of six
tokens, one padded, read at three rows) runs the decoder stack up to the block once, then reruns the block
with each module on the read rows alone and keeps those whose rows equal the block's own output (float
tolerance of the dtype). A fused projection (GPT-2's ``c_attn``), a mixture of experts that returns router
scores or mixes positions, or a module that another block shares, keeps running whole. The probe runs once
per model and block.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence

import torch

from ..models.head import first_tensor
from .ablation import SUBMODULE_NAMES

#: names of the attention's query projection and of its output projection, and of the block's MLP
QUERY_NAMES = ("q_proj", "query", "q_lin", "wq")
OUTPUT_NAMES = ("o_proj", "out_proj", "dense", "c_proj", "out_lin", "wo")

#: the attribute a model records the probes' verdicts in: ``{block index: modules that may run on rows}``
_VERDICT = "_layerscope_rows_only_parts"

#: the probe: two prompts of six tokens, the second right-padded by two, read at three rows
_PROBE_SHAPE = (2, 6)
_PROBE_MASK = ((1, 1, 1, 1, 1, 1), (1, 1, 1, 1, 0, 0))
_PROBE_ROWS = (2, 5, 9)  # flat (batch * pos + seq) indices: (0, 2), (0, 5), (1, 3)

#: ``rows()``: the distinct read rows of the batch in flight as flat ``(R,)`` indices, and its ``(batch, pos)``
Rows = Callable[[], tuple[torch.Tensor, tuple[int, int]]]


class _Stop(Exception):
    """Raised after the probed block has run: nothing after it runs."""


def _child(parent: torch.nn.Module | None, names: Sequence[str]) -> torch.nn.Module | None:
    for name in names:
        found = getattr(parent, name, None)
        if isinstance(found, torch.nn.Module):
            return found
    return None


def _candidates(layer: torch.nn.Module, others: Sequence[torch.nn.Module]) -> list[torch.nn.Module]:
    """The query projection, output projection and MLP of ``layer`` that no other block holds too."""
    attention = _child(layer, SUBMODULE_NAMES["attn"])
    found = [_child(attention, QUERY_NAMES), _child(attention, OUTPUT_NAMES), _child(layer, SUBMODULE_NAMES["mlp"])]
    shared = {id(m) for other in others for m in other.modules()}
    return [m for m in found if m is not None and id(m) not in shared]


@contextlib.contextmanager
def at_rows(modules: Sequence[torch.nn.Module], rows: Rows) -> Iterator[None]:
    """While active, each of ``modules`` (per-position maps of ``(batch, pos, d_in)``) computes only at
    ``rows()`` and returns zeros at every other position. Each original ``forward`` (the class's, or an
    accelerate wrapper on the instance) is restored on exit."""
    saved = []
    try:
        for module in modules:
            saved.append((module, "forward" in module.__dict__, module.forward))
            module.forward = _rows_forward(module.forward, rows)
        yield
    finally:
        for module, had_own, original in saved:
            if had_own:
                module.forward = original
            else:
                del module.forward


def _rows_forward(original, rows: Rows):
    def forward(hidden: torch.Tensor, *args, **kwargs):
        flat, shape = rows()
        if not isinstance(hidden, torch.Tensor) or hidden.dim() != 3 or tuple(hidden.shape[:2]) != shape:
            return original(hidden, *args, **kwargs)
        if flat.device != hidden.device:  # a block accelerate placed on another device
            flat = flat.to(hidden.device)
        picked = hidden.reshape(shape[0] * shape[1], -1).index_select(0, flat).unsqueeze(0)  # (1, R, d_in)
        computed = original(picked, *args, **kwargs)[0]  # (R, d_out)
        out = computed.new_zeros((shape[0] * shape[1], computed.shape[-1]))
        out.index_copy_(0, flat, computed)
        return out.view(*shape, -1)

    return forward


def rows_only_parts(model, index: int) -> list[torch.nn.Module]:
    """The modules of block ``index`` that may run on the read rows alone (see the module text); the probe
    runs on the first call for each block of ``model``."""
    verdicts = getattr(model, _VERDICT, None)
    if verdicts is None:
        verdicts = {}
        setattr(model, _VERDICT, verdicts)
    if index not in verdicts:
        verdicts[index] = _probe(model, index)
    return verdicts[index]


@torch.inference_mode()
def _probe(model, index: int) -> list[torch.nn.Module]:
    """Which candidates of block ``index`` give the block's own output rows when they run on those rows alone."""
    layer = model.layers[index]
    candidates = _candidates(layer, [b for i, b in enumerate(model.layers) if i != index])
    if not candidates:
        return []
    call = _record_call(model, index)
    if call is None:
        return []
    args, kwargs, expected = call
    flat = torch.tensor(_PROBE_ROWS, device=expected.device)
    expected = expected.reshape(-1, expected.shape[-1]).index_select(0, flat).float()  # (R, d_model)
    tolerance = 1e-4 if expected.dtype == torch.float32 and model.dtype == torch.float32 else 1e-2
    scale = max(1.0, float(expected.abs().max()))

    def exact(modules: list[torch.nn.Module]) -> bool:
        try:
            with at_rows(modules, lambda: (flat, _PROBE_SHAPE)):
                got = first_tensor(layer(*args, **kwargs))
        except Exception:  # noqa: BLE001 - a module whose output the block cannot take from rows alone
            return False
        if got is None or tuple(got.shape[:2]) != _PROBE_SHAPE:
            return False
        got = got.reshape(-1, got.shape[-1]).index_select(0, flat.to(got.device)).float()
        return bool(torch.allclose(got, expected.to(got.device), atol=tolerance * scale, rtol=tolerance))

    kept = [m for m in candidates if exact([m])]
    return kept if len(kept) < 2 or exact(kept) else kept[-1:]  # each alone, else the last (the MLP)


def _record_call(model, index: int):
    """``(args, kwargs, output)`` of block ``index`` in a forward of the probe input, or None when the model
    does not run on token ids and a mask alone."""
    vocab = int(model.embedding_matrix.shape[0])
    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(0, vocab, _PROBE_SHAPE, generator=generator).to(model.device)
    mask = torch.tensor(_PROBE_MASK, device=model.device)
    seen: dict = {}

    def before(module, args, kwargs):
        seen["args"], seen["kwargs"] = args, kwargs

    def after(module, args, output):
        seen["output"] = first_tensor(output)
        raise _Stop

    layer = model.layers[index]
    handles = [layer.register_forward_pre_hook(before, with_kwargs=True), layer.register_forward_hook(after)]
    try:
        model.parts.base(input_ids=ids, attention_mask=mask, use_cache=False)
    except _Stop:
        pass
    except Exception:  # noqa: BLE001 - a model that needs more than ids and a mask: keep its block whole
        return None
    finally:
        for handle in handles:
            handle.remove()
    output = seen.get("output")
    if output is None or output.dim() != 3 or tuple(output.shape[:2]) != _PROBE_SHAPE:
        return None
    return seen["args"], seen["kwargs"], output
