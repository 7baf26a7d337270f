"""Check, once per model, that its decoder layers are the blocks whose outputs transformers lists.

Layerscope names block ``k``'s output the layer ``k`` and reads it with a hook on that block. Which
``nn.ModuleList`` holds the blocks, and how transformers lists them in ``hidden_states`` (the embedding
output first, or, in Mamba and RWKV, block ``k`` as ``hidden_states[k]``), differ across architectures, so
neither is assumed: one forward of three tokens compares each hooked block output (but the last, which
some models list after the final norm) with the model's own ``hidden_states``. A list whose outputs are
not there (XLM's parallel lists of attentions and MLPs), or a block that runs more than once in one forward
(a looped model such as Dory, whose recurrent blocks run once per loop), is refused in one line, never read
silently wrong.

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


@torch.inference_mode()
def check_blocks(model) -> None:
    """Raise ``LayerscopeError`` unless each of ``model``'s blocks (but the last) outputs one of the hidden
    states transformers lists for it. Models that list no hidden states are taken as they are."""
    if getattr(model, "_blocks_checked", False):
        return
    module, layers = model.module, model.layers
    arch = type(module).__name__
    outputs: dict[int, torch.Tensor | None] = {}
    calls: dict[int, int] = {}
    handles = []

    def record(i: int):
        def hook(m, a, o):
            outputs[i] = first_tensor(o)
            calls[i] = calls.get(i, 0) + 1

        return hook

    vocab = int(model.embedding_matrix.shape[0])
    ids = torch.tensor([[i % vocab for i in _PROBE_IDS]], device=model.device)
    try:
        for i, layer in enumerate(layers):
            handles.append(layer.register_forward_hook(record(i)))
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
    if states:
        states = [first_tensor(s) for s in states]
        for k in range(len(layers) - 1):
            got = outputs.get(k)
            if not any(_same(got, s) for s in states[k : k + 2]):
                raise LayerscopeError(
                    f"{arch}: block {k} of {model.parts.layers_path} outputs none of its hidden states (several "
                    "residual streams, a time-major layout, or blocks that are not one list of modules)"
                )
    model._blocks_checked = True
