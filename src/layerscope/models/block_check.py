"""Check, once per model, that its decoder layers are the blocks whose outputs transformers lists.

Layerscope names block ``k``'s output the layer ``k`` and reads it with a hook on that block. Which
``nn.ModuleList`` holds the blocks, and how transformers lists them in ``hidden_states`` (the embedding
output first, or, in Mamba and RWKV, block ``k`` as ``hidden_states[k]``), differ across architectures, so
neither is assumed: one forward of three tokens compares each hooked block output (but the last, which
some models list after the final norm) with the model's own ``hidden_states``. A list whose outputs are
not there (XLM's parallel lists of attentions and MLPs), a block that runs more than once in one forward
(a looped model such as Dory, whose recurrent blocks run once per loop), a block that takes a second tensor
of the residual stream's shape from the block before it (Reformer's reversible blocks: two residual streams)
or blocks that run positions of their own before the input's (CPM-Ant's learned prompt) is refused in one line,
never read silently wrong.

Example:
    >>> check_blocks(model)          # None, or LayerscopeError naming the architecture
"""

from __future__ import annotations

import torch

from ..errors import LayerscopeError
from .head import first_tensor

_PROBE_IDS = (2, 5, 7)


def _same(a, b) -> bool:
    if a is None or b is None or a.shape != b.shape:
        return False
    a, b = a.detach().float(), b.detach().float()
    return bool(torch.allclose(a, b, atol=1e-4 * max(1.0, float(b.abs().max())), rtol=1e-3))


def stream_layout(found: tuple[int, ...], expected: tuple[int, int, int]) -> str:
    """Words for what a block returns where one residual stream ``expected = (batch, pos, d_model)`` was
    expected: ``found`` (a shape) as several streams stacked on a dimension (Gemma 3n's AltUp, DeepSeek V4's
    hyper-connections), streams side by side, another number of positions (a model that pads or prepends
    positions of its own, such as Reformer's chunks) or a time-major layout."""
    batch, pos, width = expected
    found = tuple(found)
    if len(found) == 4:
        for dim in range(4):
            rest = found[:dim] + found[dim + 1 :]
            if rest == expected:
                return f"{found[dim]} residual streams stacked on dimension {dim}"
    if len(found) == 3:
        if found[:2] == (batch, pos) and found[2] % width == 0 and found[2] > width:
            return f"{found[2] // width} residual streams side by side ({found[2] // width} x d_model wide)"
        if found[0] == batch and found[2] == width and found[1] != pos:
            return f"{found[1]} positions for {pos} tokens (the model pads or prepends positions of its own)"
        if found == (pos, batch, width):
            return "a time-major layout (pos, batch, d_model)"
    return "another layout"


def _prepended(got: torch.Tensor | None, states) -> int:
    """How many positions a block output ``got (batch, pos + n, d)`` holds before those of a hidden state
    ``(batch, pos, d)`` in ``states`` that its last positions equal (CPM-Ant's prompt); 0 where none does."""
    for state in states:
        if got is None or state is None or got.dim() != 3 or state.dim() != 3 or got.shape[1] <= state.shape[1]:
            continue
        if _same(got[:, -state.shape[1] :], state):
            return int(got.shape[1] - state.shape[1])
    return 0


@torch.inference_mode()
def check_blocks(model) -> None:
    """Raise ``LayerscopeError`` unless each of ``model``'s blocks (but the last) outputs one of the hidden
    states transformers lists for it. Models that list no hidden states are taken as they are."""
    if getattr(model, "_blocks_checked", False):
        return
    module, layers = model.module, model.layers
    arch = type(module).__name__
    outputs: dict[int, torch.Tensor | None] = {}
    others: dict[int, list[torch.Tensor]] = {}  # what each block returns beside its first tensor
    taken: dict[int, list[torch.Tensor]] = {}  # every tensor each block is called with
    calls: dict[int, int] = {}
    handles = []

    def take(i: int):
        def hook(m, args, kwargs):
            given = args[0] if args else kwargs.get("hidden_states")
            taken[i] = [t for t in (*args, *kwargs.values()) if isinstance(t, torch.Tensor) and t is not given]

        return hook

    def record(i: int):
        def hook(m, a, o):
            outputs[i] = first_tensor(o)
            rest = o[1:] if isinstance(o, (tuple, list)) else ()
            others[i] = [t for t in rest if isinstance(t, torch.Tensor)]
            calls[i] = calls.get(i, 0) + 1

        return hook

    vocab = int(model.embedding_matrix.shape[0])
    ids = torch.tensor([[i % vocab for i in _PROBE_IDS]], device=model.device)
    try:
        for i, layer in enumerate(layers):
            handles.append(layer.register_forward_hook(record(i)))
            handles.append(layer.register_forward_pre_hook(take(i), with_kwargs=True))
        try:
            states = getattr(
                model.parts.base(input_ids=ids, use_cache=False, output_hidden_states=True), "hidden_states", None
            )
        except Exception:  # noqa: BLE001 - a model that needs more than token ids: checked by its use instead
            states = None
    finally:
        for handle in handles:
            handle.remove()
    looped = next((k for k in sorted(calls) if calls[k] > 1), None)
    if looped is not None:
        raise LayerscopeError(
            f"{arch}: block {looped} of {model.parts.layers_path} runs {calls[looped]} times in one forward (a "
            "looped model), so a block's output is not one layer; such models are not supported"
        )
    for k in range(1, len(layers)):
        before = outputs.get(k - 1)
        second = [
            t
            for t in others.get(k - 1, [])
            if before is not None and t.shape == before.shape and any(t is u for u in taken.get(k, []))
        ]
        if second:
            raise LayerscopeError(
                f"{arch}: block {k} of {model.parts.layers_path} takes a second tensor of the residual stream's "
                f"shape from block {k - 1} beside its hidden states (two residual streams, as in reversible "
                "blocks); such models are not supported"
            )
    if states:
        states = [first_tensor(s) for s in states]
        for k in range(len(layers) - 1):
            got = outputs.get(k)
            if not any(_same(got, s) for s in states[k : k + 2]):
                extra = _prepended(got, states[k : k + 2])
                if extra:
                    raise LayerscopeError(
                        f"{arch}: its blocks run {extra} positions of its own before the input's (a learned "
                        "prompt), so a block's positions are not the input's; such models are not supported"
                    )
                state = states[k]
                if (
                    got is not None
                    and got.dim() == 3
                    and got.shape[1] > state.shape[1]
                    and not got.shape[1] % state.shape[1]
                ):
                    raise LayerscopeError(
                        f"{arch}: block {k} of {model.parts.layers_path} returns {got.shape[1]} positions for "
                        f"{state.shape[1]} tokens ({got.shape[1] // state.shape[1]} streams one after another, "
                        "as ProphetNet's n-gram streams); such models are not supported"
                    )
                raise LayerscopeError(
                    f"{arch}: block {k} of {model.parts.layers_path} outputs none of its hidden states (several "
                    "residual streams, a time-major layout, or blocks that are not one list of modules)"
                )
    model._blocks_checked = True
