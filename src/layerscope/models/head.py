"""What a causal LM applies between its last block and its logits, found by watching one short forward.

The logit lens decodes a residual ``h (..., d_model)`` as the model decodes its last block's output:
``logits = cap(scale * unembed(final_norm(h)))``. Names differ across families (``norm``, ``ln_f``,
``norm_f``, a language model inside a multimodal wrapper, BERT's head transform, none at all in post-LN
models such as BART), so they are not guessed: one forward of three tokens records the last block's output
``h``, what enters the output embedding ``x`` and the logits, and every module outside the blocks that
maps ``h`` to ``x`` is a candidate; the smallest is the final norm (``x == h``: none). A final norm whose
output the model divides by a constant before a bias-free output embedding (MiniCPM3, Inkling) is the final
norm too, the constant then part of the logit scale. The logit scale (Cohere, Granite) is fitted so that the lens reproduces the model's own logits, after inverting the
config's final soft-cap (Gemma 2). What cannot be matched is refused in one line, never decoded wrongly.

Example:
    >>> head = find_head(model)
    >>> head.final_norm, head.scale, head.softcap
    (Gemma3RMSNorm((640,), eps=1e-06), 1.0, None)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from ..errors import LayerscopeError

#: config keys of a soft-cap applied to the final logits: ``cap * tanh(logits / cap)``
SOFTCAP_KEYS = ("final_logit_softcapping", "logit_softcapping", "logits_soft_cap")
_PROBE_IDS = (2, 5, 7)


class _Reached(Exception):
    """Raised by the output embedding's pre-hook inside :class:`HeadTransform`: it carries the embedding's input."""

    def __init__(self, x: torch.Tensor):
        super().__init__()
        self.x = x


class HeadTransform(nn.Module):
    """What a head module (BERT's, RoBERTa's ``lm_head``) applies to ``h`` before its output embedding, as one
    module: the head runs and stops where its output embedding would start."""

    def __init__(self, head: nn.Module, unembed: nn.Module):
        super().__init__()
        self.head, self._unembed = head, [unembed]  # a list: the embedding is not registered twice

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        def stop(module, args):
            raise _Reached(args[0])

        handle = self._unembed[0].register_forward_pre_hook(stop)
        try:
            self.head(h)
        except _Reached as reached:
            return reached.x
        finally:
            handle.remove()
        raise LayerscopeError(f"{type(self.head).__name__} did not reach its output embedding")


@dataclass(frozen=True)
class Head:
    """How residuals become logits.

    Attributes:
        final_norm: the module between the last block and the output embedding, or None (post-LN models).
        scale: the factor on the output embedding's logits (Cohere's ``logit_scale``; 1.0 for most models).
        softcap: the final logit soft-cap, or None.
        width: the width of what enters the output embedding (``d_model``, or another width where the head
            projects first, as ELECTRA's generator head does).
    """

    final_norm: nn.Module | None
    scale: float = 1.0
    softcap: float | None = None
    width: int | None = None

    def logits(self, z: torch.Tensor) -> torch.Tensor:
        """Scaled and capped logits from the output embedding's ``z (..., vocab)``."""
        if self.scale != 1.0:
            z = z * self.scale
        if self.softcap:
            z = torch.tanh(z / self.softcap) * self.softcap
        return z


def first_tensor(value) -> torch.Tensor | None:
    """``value`` itself when a tensor, the first item of a tuple or list of outputs when that is one, else None."""
    if isinstance(value, torch.Tensor):
        return value
    if isinstance(value, (tuple, list)) and value and isinstance(value[0], torch.Tensor):
        return value[0]
    return None


def _same(a: torch.Tensor | None, b: torch.Tensor | None, tol: float = 1e-4) -> bool:
    if a is None or b is None or a.shape != b.shape:
        return False
    a, b = a.detach().float(), b.detach().float()
    return bool(torch.allclose(a, b, atol=tol * max(1.0, float(b.abs().max())), rtol=1e-3))


def _softcap(model) -> float | None:
    config = model.config
    return next((float(v) for k in SOFTCAP_KEYS if (v := getattr(config, k, None))), None)


@torch.inference_mode()
def find_head(model) -> Head:
    """The final norm, logit scale and soft-cap of ``model`` (a :class:`~layerscope.Model`), checked on one forward.

    Raises ``LayerscopeError`` naming the architecture when what lies between the last block and the logits
    is not one module followed by the output embedding.
    """
    module, parts = model.module, model.parts
    arch = type(module).__name__
    if parts.unembed is None:
        raise LayerscopeError(f"{arch} has no output embedding (LM head), so no logit lens")
    inside = {id(m) for m in parts.layers.modules()}
    records: dict[int, tuple[torch.Tensor | None, torch.Tensor | None]] = {}
    seen: dict[str, torch.Tensor | None] = {}
    handles = []

    def record(key):
        def hook(mod, args, kwargs, output):
            given = args[0] if args else kwargs.get("hidden_states", kwargs.get("input"))
            records[key] = (given if isinstance(given, torch.Tensor) else None, first_tensor(output))

        return hook

    named = [(name, m) for name, m in module.named_modules() if id(m) not in inside and m is not parts.unembed]
    try:
        handles.append(parts.layers[-1].register_forward_hook(lambda m, a, o: seen.__setitem__("h", first_tensor(o))))
        handles.append(parts.unembed.register_forward_pre_hook(lambda m, a: seen.__setitem__("x", first_tensor(a))))
        for index, (_, m) in enumerate(named):
            handles.append(m.register_forward_hook(record(index), with_kwargs=True))
        vocab = int(parts.unembed.weight.shape[0])
        ids = torch.tensor([[i % vocab for i in _PROBE_IDS]], device=model.device)
        try:
            out = module(input_ids=ids, use_cache=False)
        except Exception as exc:  # noqa: BLE001 - a model that needs more than text ids to run
            raise LayerscopeError(f"{arch} does not run on token ids alone ({type(exc).__name__}), so no logit lens")
    finally:
        for handle in handles:
            handle.remove()
    h, x = seen.get("h"), seen.get("x")
    logits = getattr(out, "logits", None)
    if h is None or x is None or logits is None or h.dim() != 3:
        raise LayerscopeError(
            f"{arch}: its last block's output is not one residual stream (batch, pos, d_model) that reaches its "
            "output embedding, so no logit lens"
        )
    entering = x  # what the output embedding's logits are fitted from: ``x``, or the final norm's output
    if _same(x, h):
        final_norm = None
    else:
        takes_h = [(i, m) for i, (_, m) in enumerate(named) if i in records and _same(records[i][0], h)]
        matches = [m for i, m in takes_h if _same(records[i][1], x)]
        if not matches:  # a head module holding the output embedding: h -> (transform) -> unembed -> logits
            matches = _head_transforms([m for _, m in takes_h], h, x, parts.unembed)
        if not matches:  # two steps: a final norm, then a head transform (Megatron-BERT)
            for i, first in takes_h:
                y = records[i][1]
                takes_y = [m for j, (_, m) in enumerate(named) if j in records and _same(records[j][0], y)]
                seconds = [m for m in takes_y if _same(records[_position(named, m)][1], x)]
                seconds += _head_transforms(takes_y, y, x, parts.unembed)
                matches += [nn.Sequential(first, second) for second in seconds if second is not first]
        if not matches and getattr(parts.unembed, "bias", None) is None:
            # a final norm whose output the model divides by a constant before its (linear) output embedding
            # (MiniCPM3's logits_scaling, Inkling's width multiplier): the constant is fitted as the logit scale
            scaled = [(m, records[i][1]) for i, m in takes_h if _scaled(records[i][1], x)]
            if scaled:
                final_norm, entering = min(scaled, key=lambda pair: sum(1 for _ in pair[0].modules()))
        if not matches and entering is x:
            raise LayerscopeError(
                f"{arch}: what it applies between its last block and its output embedding is not one module "
                "(several residual streams, or a projection), so no logit lens"
            )
        if matches:
            final_norm = min(matches, key=lambda m: sum(1 for _ in m.modules()))
    z = parts.unembed(entering).float()  # (1, pos, vocab)
    target = logits[:, -z.shape[1] :].float()
    cap = _softcap(model)
    if cap:
        target = torch.atanh((target / cap).clamp(-1 + 1e-7, 1 - 1e-7)) * cap
    scale = float((z * target).sum() / (z * z).sum().clamp(min=1e-30))
    scale = 1.0 if math.isclose(scale, 1.0, rel_tol=1e-4) else scale
    head = Head(final_norm=final_norm, scale=scale, softcap=cap, width=int(x.shape[-1]))
    if not _same(head.logits(z), logits[:, -z.shape[1] :].float(), tol=1e-3):
        raise LayerscopeError(
            f"{arch}: its logits are not a scaled output embedding of its last block's output, so no logit lens"
        )
    return head


def _scaled(y: torch.Tensor | None, x: torch.Tensor) -> bool:
    """Whether ``x`` is ``y`` times one constant (not 1)."""
    if y is None or y.shape != x.shape:
        return False
    y, x = y.detach().float(), x.detach().float()
    factor = float((x * y).sum() / (y * y).sum().clamp(min=1e-30))
    return not math.isclose(factor, 1.0, rel_tol=1e-4) and _same(y * factor, x)


def _position(named, module) -> int:
    return next(i for i, (_, m) in enumerate(named) if m is module)


def _head_transforms(modules, h: torch.Tensor, x: torch.Tensor, unembed: nn.Module) -> list[nn.Module]:
    """Of ``modules`` (each taking ``h``), those holding the output embedding whose output is the logits of ``x``:
    each as the :class:`HeadTransform` that stops before its output embedding."""
    holders = [m for m in modules if any(sub is unembed for sub in m.modules())]
    return [HeadTransform(m, unembed) for m in holders if _same(first_tensor(m(h)), unembed(x))]
