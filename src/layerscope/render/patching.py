"""Patching figures from ``patch.csv`` rows, each one description drawn as plotly (HTML) and as PNG; no statistics
computed here.

- :func:`position_grid`: layer x position heatmap of ``normalized`` for one part (a
  :class:`~layerscope.render.matrix_figure.MatrixFigure`), the prompt's tokens on the x axis shown visibly
  (``␣`` for a space, ``\\n`` spelled), the changed positions marked ``▸`` and framed;
- :func:`heads_grid`: layer x head grid (``head_positions="each"``: each head's largest value over positions);
- :func:`layer_lines`: one line per part over the blocks, the largest value of any one position (a
  :class:`~layerscope.render.line_figure.LineFigure`).

Colours: 0 (the corrupt run's value) white, 1 (the clean run's) dark red, negative values blue; gray: no value.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .heatmap import visible_token
from .line_figure import Line, LineFigure, Panel
from .matrix_figure import MatrixFigure
from .palette import PALETTE

COLORSCALE = "RdBu_r"
MARK = "▸"
#: said under a grid with a cell of no value
NO_VALUE = "gray: no value (not patched there, or the clean and corrupt runs agree)"


def _grid(rows: pd.DataFrame, column: str) -> tuple[np.ndarray, list[str], list]:
    """``(layers, columns)`` of ``normalized``, the layer names by depth, and the column keys in order."""
    rows = rows.sort_values(["depth", column])
    layers = list(dict.fromkeys(rows["layer"].astype(str)))
    keys = sorted(dict.fromkeys(int(v) for v in rows[column].dropna()))
    table = rows.pivot_table(index="depth", columns=column, values="normalized", aggfunc="max", dropna=False)
    table = table.reindex(columns=keys)
    return table.to_numpy(dtype=float), layers, keys


def token_labels(tokens: list[str], positions: list[int], changed: list[int]) -> list[str]:
    """``"11 ▸␣John"``: position, a mark where the prompts differ, the token shown visibly."""
    out = []
    for p in positions:
        token = visible_token(tokens[p]) if p < len(tokens) else "?"
        out.append(f"{p} {MARK if p in changed else ''}{token}")
    return out


def _range(z: np.ndarray) -> float:
    finite = np.abs(z[np.isfinite(z)])
    return max(1.0, float(finite.max())) if finite.size else 1.0


def _heat(title: str, z: np.ndarray, rows: list[str], columns: list[str], **layout) -> MatrixFigure:
    """A diverging grid of ``normalized`` (``z``: ``(len(rows), len(columns))``), symmetric about 0, the first
    row at the bottom, every row and column labelled."""
    bound = _range(z)
    return MatrixFigure(
        title,
        {"": z},
        rows,
        [],
        undefined_note=NO_VALUE,
        columns=columns,
        value_title="normalized",
        colors=COLORSCALE,
        value_range=(-bound, bound),
        rows_up=True,
        height=max(420, 22 * len(rows) + 220),
        max_ticks=max(len(rows), len(columns), 1),
        square_cells=False,
        **layout,
    )


def position_grid(rows: pd.DataFrame, tokens: list[str], changed: list[int], *, title: str) -> MatrixFigure:
    """Layer x position grid of one part's ``rows`` (``patch.csv`` rows with a ``position``), the positions in
    ``changed`` framed."""
    z, layers, positions = _grid(rows, "position")
    return _heat(
        title,
        z,
        layers,
        token_labels(tokens, positions, changed),
        x_title=f"position and token ({MARK} the prompts differ)",
        y_title="layer (embed, then each block's output)" if "embed" in layers else "block",
        marked_columns=[i for i, p in enumerate(positions) if p in changed],
        hover="layer %{y}<br>%{x}<br>normalized %{z:.3f}",
    )


def heads_grid(rows: pd.DataFrame, *, title: str) -> MatrixFigure:
    """Block x head grid of the ``heads`` part's ``rows`` (each head's largest value over positions when each
    position was patched on its own)."""
    z, layers, heads = _grid(rows, "head")
    each = rows["position"].notna().any()
    return _heat(
        title,
        z,
        layers,
        [str(h) for h in heads],
        x_title="head" + (" (its largest value over positions)" if each else " (patched at every position)"),
        y_title="block",
        hover="block %{y} head %{x}<br>normalized %{z:.3f}",
    )


def layer_lines(cells: pd.DataFrame, *, title: str) -> LineFigure:
    """One line per part (attention output, MLP output) over the blocks: the largest ``normalized`` of any one
    position."""
    lines = []
    for part, name in (("attn", "attention output"), ("mlp", "MLP output")):
        rows = cells[cells["part"] == part]
        if len(rows):
            series = rows.groupby("depth")["normalized"].max().sort_index()
            color = PALETTE[len(lines) % len(PALETTE)]
            lines.append(Line(name, [str(int(d) - 1) for d in series.index], list(series.to_numpy(float)), color))
    panel = Panel("", lines, x_title="block", y_title="normalized (largest over positions)")
    return LineFigure(title, [panel])
