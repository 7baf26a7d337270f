"""The read-position capture: every layer of a model at one position per input, nothing else kept.

Each input (a word in its context, or a prompt) is read at its last token, the position any two tokenizers
agree on. The capture engine keeps only those positions (``pool="last"``), at every point of the residual
stream: ``embed``, ``0``..``n-1``, ``norm``. ``compare`` captures every model once this way; what two
captures share decides whether they can be measured against each other position by position.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import LayerscopeError
from ..tokensets import encode_sets
from .contexts import word_prompts
from .engine import capture_residuals
from .layer_spec import FINAL_NORM, layer_depth, layer_name
from .prompts import CapturePrompt


@dataclass
class Capture:
    """What is kept of one model: the residuals at the read positions and what identifies the inputs.

    Attributes:
        name: the display name.
        residuals: ``(layer, item, d_model)`` float32, layers ``embed, 0..n-1, norm`` (no ``norm`` when the
            model has no final norm).
        layers: the layer names; ``depths`` the integer depths; ``n_blocks`` the number of decoder blocks.
        ids: each input's token ids as fed, ``item`` tuples (to see whether two models tokenize alike).
        read: the token read in each input (text), ``item`` strings.
        d_model: the width of the residual stream.
    """

    name: str
    residuals: np.ndarray
    layers: list[str]
    depths: list[int]
    n_blocks: int
    ids: list[tuple[int, ...]]
    read: list[str]
    d_model: int

    @property
    def relative_depths(self) -> list[float]:
        """``(layer,)``: each layer's depth over the number of blocks (``embed`` 0, the last block's output 1)."""
        return [d / self.n_blocks for d in self.depths]


def capture_prompts(model, config) -> list:
    """One :class:`~layerscope.capture.CapturePrompt` per input, its one group holding the token read.

    ``config``: a :class:`~layerscope.experiments.compare.CompareConfig` (its prompts, or its words in
    ``context``). A prompt is read at its last token; a word at the last token of the word in its context.
    """
    if config.uses_prompts:
        out = []
        for prompt in config.all_prompts():
            ids = model.encode(prompt, bos=config.bos)
            if not ids:
                raise LayerscopeError(f"prompt {prompt!r} gives no token in {model.name}")
            out.append(CapturePrompt(tuple(ids), ((len(ids) - 1,),)))
        return out
    items = encode_sets(model.tokenizer, config.word_sets(), leading_space=config.leading_space, warn=False)
    return word_prompts(model, items, config.context)


def capture_model(model, config, name: str) -> Capture:
    """Capture every layer of ``model`` at the last token of each input (nothing else of a sequence is kept).

    Returns a :class:`Capture` whose ``residuals`` are ``(layer, item, d_model)`` float32 over the layers
    ``embed, 0..n-1, norm`` and the inputs of :func:`capture_prompts`, in order.
    """
    prompts = capture_prompts(model, config)
    points = [*range(model.n_layers + 1), *([FINAL_NORM] if model.final_norm is not None else [])]
    array = capture_residuals(
        model,
        prompts,
        points,
        pool="last",
        batch_size=config.batch_size,
        description=f"Capturing {len(prompts)} inputs in {name}",
    )
    last = [p.ids[p.groups[0][-1]] for p in prompts]
    return Capture(
        name=name,
        residuals=np.asarray(array),
        layers=[layer_name(d) for d in points],
        depths=[layer_depth(d, model.n_layers) for d in points],
        n_blocks=model.n_layers,
        ids=[p.ids for p in prompts],
        read=model.token_strings(last),
        d_model=model.d_model,
    )


def comparable(reference: Capture, other: Capture) -> str | None:
    """Why ``other`` cannot be measured against ``reference`` position by position, or None when it can: both
    need the same number of blocks, width, layers and token ids of every input (one model in two formats)."""
    if other.n_blocks != reference.n_blocks:
        return f"{other.n_blocks} blocks, the reference {reference.n_blocks}"
    if other.d_model != reference.d_model:
        return f"width {other.d_model}, the reference {reference.d_model}"
    if other.layers != reference.layers:
        return "other layers than the reference"
    if other.ids != reference.ids:
        return "another tokenization of the inputs"
    return None
