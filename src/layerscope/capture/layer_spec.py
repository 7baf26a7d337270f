"""Layer indices: which points of the residual stream to capture.

The convention (the same as Hugging Face's ``output_hidden_states`` up to the last entry):

- ``0``: the input of the first decoder layer, i.e. the embedding output as the model uses it
  (Gemma multiplies by ``sqrt(d_model)``); HF ``hidden_states[0]``.
- ``i`` for ``1 <= i <= n_layers``: the output of decoder layer ``i - 1``; HF ``hidden_states[i]``
  for ``i < n_layers``. ``n_layers`` is the output of the last layer *before* the final norm, whereas
  HF puts the final norm's output in its last entry (``tie_last_hidden_states``).
- :data:`FINAL_NORM` (the string ``"norm"``): the final norm's output, HF's last ``hidden_states`` entry.

Negative indices count from the end: ``-1`` is ``n_layers``.

Example:
    >>> parse_layers("0,1,6,-1", n_layers=18)
    [0, 1, 6, 18]
"""

from __future__ import annotations

from typing import Sequence

from ..errors import LayerscopeError

FINAL_NORM = "norm"

LayerIndex = int | str


def layer_name(index: LayerIndex) -> str:
    """The decimal index, or ``"norm"`` for the final norm (the column ``layer`` of the tables)."""
    return str(index)


def layer_title(index: LayerIndex) -> str:
    """For figures: ``"layer 0 (embedding)"``, ``"layer 6"``, ``"final norm"``."""
    if index == FINAL_NORM:
        return "final norm"
    return "layer 0 (embedding)" if index == 0 else f"layer {index}"


def resolve_layer(value: int | str, n_layers: int) -> LayerIndex:
    """One layer index (int, numeric string, or ``"norm"``) resolved into ``0..n_layers`` or ``"norm"``."""
    if isinstance(value, str):
        text = value.strip()
        if text == FINAL_NORM:
            return FINAL_NORM
        if text in ("embed", "embedding"):
            return 0
        try:
            value = int(text)
        except ValueError:
            raise LayerscopeError(
                f"layer {text!r} is not a layer index; valid: integers -{n_layers + 1}..{n_layers}, "
                f"'embedding' or {FINAL_NORM!r}"
            ) from None
    index = int(value)
    if not -(n_layers + 1) <= index <= n_layers:
        raise LayerscopeError(
            f"layer {index} is out of range for a model with {n_layers} layers; "
            f"valid: 0..{n_layers} (0 = embedding output) or -{n_layers + 1}..-1 from the end"
        )
    return index + n_layers + 1 if index < 0 else index


def parse_layers(spec: str | int | Sequence[int | str] | None, n_layers: int) -> list[LayerIndex]:
    """``"all"``/None -> ``[0..n_layers]``; ``"0,1,6,-1"`` or a list -> resolved, duplicates dropped, order kept."""
    if spec is None or (isinstance(spec, str) and spec.strip() == "all"):
        return list(range(n_layers + 1))
    if isinstance(spec, int):
        parts: Sequence[int | str] = [spec]
    elif isinstance(spec, str):
        parts = [p for p in spec.split(",")]
        if any(not p.strip() for p in parts):
            raise LayerscopeError(f"--layers {spec!r} has an empty item; give 'all' or indices such as '0,1,6,-1'")
    else:
        parts = list(spec)
    if not parts:
        raise LayerscopeError("no layer given; give 'all' or indices such as '0,1,6,-1'")
    return list(dict.fromkeys(resolve_layer(p, n_layers) for p in parts))
