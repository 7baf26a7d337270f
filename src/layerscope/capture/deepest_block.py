"""The deepest block asked for computes its MLP only at the rows that are read.

Nothing after the deepest block runs (the engine stops there), and of that block only the rows the hooks
read are kept. Its attention must run at every position (the read rows attend to all earlier ones), but its
MLP is applied to each position alone, so it runs only on the read rows: the MLP of the last block is about
two thirds of that block's work, and with ``layers="all"`` at the last position of 13-token prompts, about
4% of the whole forward.

The MLP's ``forward`` is replaced, for the duration, by one that gathers the read rows ``(1, R, d_model)``,
runs the real MLP on them, and scatters the result into zeros shaped ``(batch, pos, d_out)``; the rows that
are not read hold zeros, and the block's output there is never read.

The replacement is used only where it is exact: the MLP returns one tensor shaped as its input, and a probe
(a 5-position input, the MLP on all positions against the MLP on two of them) gives the same rows. A model
whose MLP mixes positions (a mixture of experts with capacity limits per batch, say) fails the probe and
keeps its whole MLP. The probe runs once per model.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import torch

from ..errors import LayerscopeError
from .ablation import submodule

#: the attribute a model records the probe's verdict in (one probe per model)
_VERDICT = "_layerscope_mlp_per_position"


def _per_position(mlp: torch.nn.Module, d_model: int, dtype: torch.dtype, device) -> bool:
    """Whether ``mlp`` maps each position alone: its rows at positions (1, 4) of a 5-position input equal its
    output on those two positions alone (float tolerance of the dtype), and it returns one tensor."""
    generator = torch.Generator().manual_seed(0)
    probe = torch.randn((1, 5, d_model), generator=generator).to(device=device, dtype=dtype)
    try:
        whole = mlp(probe)
        part = mlp(probe[:, [1, 4]])
    except Exception:  # an MLP that needs arguments the block passes: keep it whole
        return False
    if not isinstance(whole, torch.Tensor) or not isinstance(part, torch.Tensor):
        return False
    if whole.shape[:2] != (1, 5) or part.shape[:2] != (1, 2):
        return False
    tolerance = 1e-5 if dtype == torch.float32 else 1e-2
    return torch.allclose(whole[:, [1, 4]].float(), part.float(), atol=tolerance, rtol=tolerance)


def rows_only_mlp(model, index: int) -> torch.nn.Module | None:
    """The MLP of block ``index`` when it may run on the read rows alone, else None (see the module text)."""
    layer = model.layers[index]
    try:
        mlp = submodule(layer, "mlp", index)
    except LayerscopeError:
        return None
    verdicts = getattr(model, _VERDICT, None)
    if verdicts is None:
        verdicts = {}
        setattr(model, _VERDICT, verdicts)
    if index not in verdicts:
        # an offloaded MLP (accelerate, weights on "meta" until it runs) loads its weights for the probe too
        with torch.inference_mode():
            verdicts[index] = _per_position(mlp, model.d_model, model.dtype, model.device)
    return mlp if verdicts[index] else None


@contextlib.contextmanager
def mlp_at_rows(mlp: torch.nn.Module, rows: Callable[[], tuple[torch.Tensor, torch.Tensor]]) -> Iterator[None]:
    """While active, ``mlp`` computes only at ``rows()`` = ``(batch_index, seq_index)`` (each ``(R,)``, the
    rows of the batch in flight) and returns zeros at every other position. The original ``forward`` (the
    class's, or an accelerate wrapper on the instance) is restored on exit."""
    had_own = "forward" in mlp.__dict__
    original = mlp.forward

    def forward(hidden: torch.Tensor, *args, **kwargs) -> torch.Tensor:
        batch_index, seq_index = rows()
        batch, positions = hidden.shape[:2]
        flat = torch.unique(batch_index * positions + seq_index).to(hidden.device)  # (R,) distinct rows
        picked = hidden.reshape(batch * positions, -1).index_select(0, flat).unsqueeze(0)  # (1, R, d_model)
        computed = original(picked, *args, **kwargs)[0]  # (R, d_out)
        out = computed.new_zeros((batch * positions, computed.shape[-1]))
        out.index_copy_(0, flat, computed)
        return out.view(batch, positions, -1)

    mlp.forward = forward
    try:
        yield
    finally:
        if had_own:
            mlp.forward = original
        else:
            del mlp.forward
