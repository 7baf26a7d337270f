"""Names of the points of the residual stream, one convention for every command, table and figure.

A user names a point of the residual stream as:

- ``embed``: the embedding output as the model uses it (Gemma multiplies by ``sqrt(d_model)``);
  Hugging Face ``hidden_states[0]``;
- ``k`` for ``0 <= k < n_layers``: the output of decoder block ``k`` (nnsight's ``model.layers[k].output``,
  TransformerLens' ``blocks.k.hook_resid_post``); HF ``hidden_states[k + 1]`` for ``k < n_layers - 1`` in
  most models (Mamba and RWKV list it as ``hidden_states[k]``: the mapping is checked per model, see
  :mod:`layerscope.models.block_check`). The last block's output is taken *before* the final norm, whereas
  HF's last entry is after it;
- negative ``k`` counts blocks from the end: ``-1`` is the last block;
- ``norm``: the final norm's output, HF's last ``hidden_states`` entry.

Inside, a point is a *depth*: ``0`` for ``embed``, ``k + 1`` for block ``k``, and :data:`FINAL_NORM`
for the final norm (its sortable depth, :func:`layer_depth`, is ``n_layers + 1``). Tables carry the
name in ``layer`` and the integer depth in ``depth``. ``ablate --drop k`` removes the same block ``k``.

Example:
    >>> parse_layers("embed,0,6,-1", n_layers=18)
    [0, 1, 7, 18]
    >>> [layer_name(d) for d in [0, 1, 7, 18, FINAL_NORM]]
    ['embed', '0', '6', '17', 'norm']
"""

from __future__ import annotations

from collections.abc import Sequence

from ..errors import LayerscopeError

FINAL_NORM = "norm"
EMBED = "embed"

LayerIndex = int | str


def layer_name(depth: LayerIndex) -> str:
    """``embed``, the block number ``k`` (as text), or ``norm``: the column ``layer`` of every table."""
    if depth == FINAL_NORM:
        return FINAL_NORM
    return EMBED if depth == 0 else str(int(depth) - 1)


def layer_depth(depth: LayerIndex, n_layers: int) -> int:
    """The integer for sorting: 0 for ``embed``, ``k + 1`` for block ``k``, ``n_layers + 1`` for ``norm``."""
    return n_layers + 1 if depth == FINAL_NORM else int(depth)


def layer_title(depth: LayerIndex) -> str:
    """For figures: ``"embed"``, ``"block 6"``, ``"norm (final)"``."""
    if depth == FINAL_NORM:
        return "norm (final)"
    return "embed" if depth == 0 else f"block {int(depth) - 1}"


def valid_layers_text(n_layers: int) -> str:
    return f"'embed', blocks 0..{n_layers - 1} (or -{n_layers}..-1 from the end), 'norm'"


def resolve_layer(value: int | str, n_layers: int) -> LayerIndex:
    """One layer name (``embed``, a block number, negative from the end, ``norm``) as its depth."""
    if isinstance(value, str):
        text = value.strip()
        if text == FINAL_NORM:
            return FINAL_NORM
        if text in (EMBED, "embedding"):
            return 0
        try:
            value = int(text)
        except ValueError:
            raise LayerscopeError(f"layer {text!r} is not a layer; valid: {valid_layers_text(n_layers)}") from None
    block = int(value)
    if not -n_layers <= block < n_layers:
        raise LayerscopeError(
            f"layer {block} is out of range for a model with {n_layers} blocks; valid: {valid_layers_text(n_layers)}"
        )
    return (block % n_layers) + 1


def parse_layers(spec: str | int | Sequence[int | str] | None, n_layers: int) -> list[LayerIndex]:
    """``"all"``/None -> ``embed`` and every block; ``"embed,0,6,-1"`` or a list -> depths, duplicates dropped.

    Example:
        >>> parse_layers("all", 2)
        [0, 1, 2]
    """
    if spec is None or (isinstance(spec, str) and spec.strip() == "all"):
        return list(range(n_layers + 1))
    if isinstance(spec, int):
        parts: Sequence[int | str] = [spec]
    elif isinstance(spec, str):
        parts = [p for p in spec.split(",")]
        if any(not p.strip() for p in parts):
            raise LayerscopeError(f"layers {spec!r} has an empty item; give 'all' or names such as 'embed,0,6,-1'")
    else:
        parts = list(spec)
    if not parts:
        raise LayerscopeError("no layer given; give 'all' or names such as 'embed,0,6,-1'")
    return list(dict.fromkeys(resolve_layer(p, n_layers) for p in parts))


def check_layers_syntax(spec: str | int | Sequence[int | str] | None) -> None:
    """Check a layer spec without a model: names and integers only (the range needs the model)."""
    if spec is None or (isinstance(spec, str) and spec.strip() == "all"):
        return
    parts = spec.split(",") if isinstance(spec, str) else [spec] if isinstance(spec, int) else list(spec)
    if not parts or any(not str(p).strip() for p in parts):
        raise LayerscopeError("has an empty item; give 'all' or names such as 'embed,0,6,-1'")
    for part in parts:
        text = str(part).strip()
        if text in (EMBED, "embedding", FINAL_NORM):
            continue
        try:
            int(text)
        except ValueError:
            raise LayerscopeError(
                f"has {text!r}, which is not a layer; valid: 'all', 'embed', block numbers (negative from the end), 'norm'"
            ) from None
