"""The plain way to patch one activation, as an oracle: two full Hugging Face forwards of whole prompts, hooks
written here (not through layerscope's engine) that record the source run's activation (of the same model, or of
another one) and overwrite the base run's at one place."""

from __future__ import annotations

import torch

CLEAN = "When John and Mary went to the store, John gave the bag to"
CORRUPT = "When John and Mary went to the store, Mary gave the bag to"


def _site(layers, part: str, layer: int):
    """The module whose output (or input, for ``embed`` and heads) holds ``part`` at ``layer``."""
    if part == "resid":
        return layers[0] if layer == 0 else layers[layer - 1]
    if part == "attn":
        return layers[layer].self_attn
    if part == "mlp":
        return layers[layer].mlp
    return layers[layer].self_attn.o_proj


def _reads_input(part: str, layer: int) -> bool:
    return part == "heads" or (part == "resid" and layer == 0)


@torch.inference_mode()
def activation(model, ids: list[int], part: str, layer: int) -> torch.Tensor:
    """``(pos, width)``: the activation of ``part`` at ``layer`` over the whole prompt."""
    module = _site(model.module.model.layers, part, layer)
    seen = {}

    def pre(module, args, kwargs):
        seen["x"] = (args[0] if args else kwargs["hidden_states"])[0].clone()

    def post(module, args, output):
        seen["x"] = (output[0] if isinstance(output, tuple) else output)[0].clone()

    handle = (
        module.register_forward_pre_hook(pre, with_kwargs=True)
        if _reads_input(part, layer)
        else module.register_forward_hook(post)
    )
    try:
        model.module(input_ids=torch.tensor([ids]), use_cache=False, logits_to_keep=1)
    finally:
        handle.remove()
    return seen["x"]


@torch.inference_mode()
def patched_logits(
    model,
    base: list[int],
    source: list[int],
    part: str,
    layer: int,
    position,
    head=None,
    head_dim=None,
    *,
    source_model=None,
) -> torch.Tensor:
    """``(vocab,)`` last-position logits of ``base`` with ``part`` at (``layer``, ``position``; None: every
    position) replaced by its value in ``source`` (heads: only head ``head``'s slice), as ``source_model`` (default:
    ``model``) computes it."""
    value = activation(source_model or model, source, part, layer)
    where = slice(None) if position is None else slice(position, position + 1)
    width = slice(None) if head is None else slice(head * head_dim, (head + 1) * head_dim)
    module = _site(model.module.model.layers, part, layer)

    def overwrite(x):
        x = x.clone()
        x[0, where, width] = value[where, width]
        return x

    def pre(module, args, kwargs):
        if args:
            return (overwrite(args[0]), *args[1:]), kwargs
        return args, {**kwargs, "hidden_states": overwrite(kwargs["hidden_states"])}

    def post(module, args, output):
        if isinstance(output, tuple):
            return (overwrite(output[0]), *output[1:])
        return overwrite(output)

    handle = (
        module.register_forward_pre_hook(pre, with_kwargs=True)
        if _reads_input(part, layer)
        else module.register_forward_hook(post)
    )
    try:
        return model.module(input_ids=torch.tensor([base]), use_cache=False, logits_to_keep=1).logits[0, -1].float()
    finally:
        handle.remove()


@torch.inference_mode()
def plain_logits(model, ids: list[int]) -> torch.Tensor:
    return model.module(input_ids=torch.tensor([ids]), use_cache=False, logits_to_keep=1).logits[0, -1].float()


def rounded_copy(model, bits: int = 4):
    """A copy of ``model`` whose linear weights are rounded to ``bits`` bits per row (symmetric, absmax scale): a
    model in another format, with the same tokenizer object, depth and width."""
    import copy

    from layerscope.models.model import Model

    module = copy.deepcopy(model.module)
    levels = 2 ** (bits - 1) - 1
    with torch.no_grad():
        for sub in module.modules():
            if isinstance(sub, torch.nn.Linear):
                scale = sub.weight.abs().amax(dim=1, keepdim=True).clamp(min=1e-8) / levels
                sub.weight.copy_((sub.weight / scale).round() * scale)
    return Model(
        module,
        model.tokenizer,
        f"{model.source} ({bits}-bit)",
        model.fingerprint + f"-q{bits}",
        f"{model.name}-q{bits}",
    )


def taylor_value(
    model, base, source, part, layer, position, metric, head=None, head_dim=None, *, source_model=None
) -> float:
    """The first-order Taylor value of ``metric`` (a function of the ``(vocab,)`` last-position logits) at the
    base run, with ``part`` at (``layer``, ``position``) moved from its base value towards its ``source`` value:
    ``m(0) + dm/dalpha(0)`` where the hook puts ``base + alpha * (source - base)`` there, the derivative taken by
    ``torch.autograd`` on ``alpha``."""
    value = activation(source_model or model, source, part, layer).clone()  # out of inference mode
    where = slice(None) if position is None else slice(position, position + 1)
    width = slice(None) if head is None else slice(head * head_dim, (head + 1) * head_dim)
    alpha = torch.zeros((), dtype=torch.float64, requires_grad=True)
    module = _site(model.module.model.layers, part, layer)

    def moved(x):
        x = x.clone()
        here = x[0, where, width]
        x[0, where, width] = here + (alpha * (value[where, width] - here).double()).to(x.dtype)
        return x

    def pre(module, args, kwargs):
        if args:
            return (moved(args[0]), *args[1:]), kwargs
        return args, {**kwargs, "hidden_states": moved(kwargs["hidden_states"])}

    def post(module, args, output):
        return (moved(output[0]), *output[1:]) if isinstance(output, tuple) else moved(output)

    handle = (
        module.register_forward_pre_hook(pre, with_kwargs=True)
        if _reads_input(part, layer)
        else module.register_forward_hook(post)
    )
    try:
        with torch.enable_grad():
            logits = model.module(input_ids=torch.tensor([base]), use_cache=False, logits_to_keep=1).logits[0, -1]
            m = metric(logits.float())
            (slope,) = torch.autograd.grad(m, alpha)
    finally:
        handle.remove()
    return float(m.detach()) + float(slope)
