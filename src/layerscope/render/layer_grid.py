"""Static figures of per-layer projections: a grid of small panels, one figure per layer, metric curves.

Each function returns a :class:`matplotlib.figure.Figure` (built with :func:`.static.new_figure`, no
pyplot); the run directory writes it as PNG.

Models of different depths (tables with a ``relative_depth`` column whose values differ between models, see
:func:`layerscope.analysis.layer_metrics.relative_depth`) are lined up on relative depth: the grid has one
column per model and one row per layer of the deepest model, each model's layers sitting in the rows nearest
their relative depth (no panel is drawn where a model has no layer); the metric curves are drawn against
relative depth. One model, or models at the same depths, keep the layer names.

Example:
    >>> grid_figure(projection, titles, title="categories across layers")          # grid.png
    >>> layer_figure(projection, ratios, "6", title="block 6")                     # layers/layer-06.png
    >>> metrics_figure(metrics, title="separation across layers")                  # metrics.png
"""

from __future__ import annotations

import math

import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from ..analysis.layer_metrics import align_layers, relative_positions
from ..analysis.layer_projection import layer_order
from .line_figure import PNG_TEXT_PT
from .palette import color_map
from .static import new_figure

RELATIVE_AXIS = "relative depth (0 = embed, 1 = last block)"
_GRID_DPI = 90  # a grid of 2.3-inch panels with 9-point titles fits a page at this resolution

METRIC_LABELS = {
    "silhouette": "silhouette",
    "between_within": "between / within distance",
    "residual_norm": "mean residual norm",
    "top2_variance": "variance in top 2 PCs",
}


def _panel(ax, rows: pd.DataFrame, colors: dict, *, labels: bool, size: float) -> None:
    """Scatter ``rows`` (``set, label, pc1, pc2``) on ``ax``, one colour per set."""
    for set_name, group in rows.groupby("set", sort=False):
        ax.scatter(group["pc1"], group["pc2"], color=colors[set_name], s=size, label=str(set_name))
        if labels:
            for x, y, label in zip(group["pc1"], group["pc2"], group["label"]):
                ax.text(x, y, f" {label}", color=colors[set_name], fontsize=PNG_TEXT_PT)


def _no_ticks(ax) -> None:
    """A small panel's axes carry no numbers: PCA coordinates of one panel say nothing next to another's."""
    ax.set_xticks([])
    ax.set_yticks([])


def _legend(fig: Figure, colors: dict, *, bottom: float = 0.0) -> None:
    handles = [Line2D([], [], marker="o", linestyle="", color=c, label=s) for s, c in colors.items()]
    fig.legend(
        handles=handles,
        loc="lower center",
        bbox_to_anchor=(0.5, bottom),
        ncol=min(len(colors), 5),
        fontsize=PNG_TEXT_PT,
        frameon=False,
    )


def grid_figure(table: pd.DataFrame, titles: dict[str, str], *, title: str) -> Figure:
    """One small panel per (model, layer) of ``table`` (``model, layer, depth[, relative_depth], set, label, pc1, pc2``).

    A block of rows per model; ``titles`` maps a layer name to its panel title (``embed``, ``block 6``).
    Models of different relative depths: one column per model, rows aligned on relative depth (see the module).
    """
    positions = relative_positions(table)
    if positions is not None:
        return _aligned_grid(table, titles, positions, title=title)
    models = list(dict.fromkeys(table["model"]))
    layers = layer_order(table)
    colors = color_map(list(table["set"]))
    cols = min(len(layers), max(1, math.ceil(math.sqrt(len(layers) * 1.4))))
    block = math.ceil(len(layers) / cols)
    fig = new_figure(figsize=(2.3 * cols, 2.3 * block * len(models) + 0.8), dpi=_GRID_DPI)
    axes = fig.subplots(block * len(models), cols, squeeze=False)
    for m, model in enumerate(models):
        for i in range(block * cols):
            ax = axes[m * block + i // cols][i % cols]
            if i >= len(layers):
                ax.axis("off")
                continue
            rows = table[(table["model"] == model) & (table["layer"] == layers[i])]
            _panel(ax, rows, colors, labels=False, size=6)
            name = titles.get(layers[i], layers[i])
            ax.set_title(f"{model}\n{name}" if len(models) > 1 else name, fontsize=PNG_TEXT_PT)
            _no_ticks(ax)
    _legend(fig, colors)
    fig.suptitle(title, fontsize=PNG_TEXT_PT + 3)
    fig.tight_layout(rect=(0, 0.06, 1, 0.97))
    return fig


def _row_groups(n_rows: int, n_models: int) -> int:
    """How many side-by-side groups of model columns the rows wrap into: the shape nearest 1.4 wide per 1 high."""
    return min(range(1, n_rows + 1), key=lambda g: abs(g * n_models / math.ceil(n_rows / g) - 1.4))


def _aligned_grid(table: pd.DataFrame, titles: dict[str, str], positions: dict, *, title: str) -> Figure:
    """One column per model, one row per layer of the deepest model; a model's layer in its nearest row.

    A long run of rows wraps into groups side by side (rows 0..k-1, then k..2k-1, ...), each group with one
    column per model, so a deep model gives a wide grid rather than a tall strip; every panel is titled with
    its model, layer and relative depth, every row's first panel with the row's relative depth.
    """
    rows, placed = align_layers(positions)
    models = list(positions)
    colors = color_map(list(table["set"]))
    groups = _row_groups(len(rows), len(models))
    per_group = math.ceil(len(rows) / groups)
    columns = groups * len(models) + groups - 1  # a narrow spacer column between groups
    ratios = [1.0 if (c + 1) % (len(models) + 1) else 0.3 for c in range(columns)]
    height = 2.1 * per_group + 1.3
    fig = new_figure(figsize=(2.3 * sum(ratios) + 0.6, height), dpi=_GRID_DPI)
    grid = fig.add_gridspec(per_group, columns, width_ratios=ratios)
    for m, model in enumerate(models):
        depth_of = dict(positions[model])
        for r, layer in enumerate(placed[model]):
            if layer is None:
                continue
            group, row = divmod(r, per_group)
            ax = fig.add_subplot(grid[row, group * (len(models) + 1) + m])
            at = table[(table["model"] == model) & (table["layer"] == layer)]
            _panel(ax, at, colors, labels=False, size=6)
            name = f"{titles.get(layer, layer)} ({depth_of[layer]:.2f})"
            ax.set_title(f"{model}\n{name}", fontsize=PNG_TEXT_PT)
            _no_ticks(ax)
            if all(placed[other][r] is None for other in models[:m]):  # the row's first panel in its group
                ax.set_ylabel(f"rel. depth {rows[r]:.2f}", fontsize=PNG_TEXT_PT)
    _legend(fig, colors)
    fig.suptitle(f"{title}\nrows: {RELATIVE_AXIS}", fontsize=PNG_TEXT_PT + 2)
    fig.tight_layout(rect=(0, 0.6 / height, 1, 1 - 0.5 / height))
    return fig


def layer_figure(table: pd.DataFrame, ratios: pd.DataFrame, layer: str, *, title: str) -> Figure:
    """The models side by side at one ``layer`` (a name), points labelled, axes titled with the variance share.

    Only the models that have ``layer`` get a panel (a shorter model has no block 10).
    """
    models = list(dict.fromkeys(table.loc[table["layer"] == layer, "model"]))
    colors = color_map(list(table["set"]))
    fig = new_figure(figsize=(7 * len(models), 6.5), dpi=120)
    axes = fig.subplots(1, len(models), squeeze=False)
    for ax, model in zip(axes[0], models):
        rows = table[(table["model"] == model) & (table["layer"] == layer)]
        _panel(ax, rows, colors, labels=True, size=22)
        share = ratios[(ratios["model"] == model) & (ratios["layer"] == layer)]
        for k, setter in enumerate((ax.set_xlabel, ax.set_ylabel)):
            setter(f"PC{k + 1} ({100 * share[f'ratio{k + 1}'].iloc[0]:.1f}%)" if len(share) else f"PC{k + 1}")
        ax.set_title(model, fontsize=10)
        ax.grid(alpha=0.3)
    handles = [
        Line2D([], [], marker="o", linestyle="", color=colors[s], label=str(s))
        for s in dict.fromkeys(table.loc[table["layer"] == layer, "set"])
    ]
    axes[0][-1].legend(handles=handles, loc="best", fontsize=PNG_TEXT_PT, frameon=False)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def metrics_figure(metrics: pd.DataFrame, *, title: str) -> Figure:
    """Each metric of ``metrics`` (``model, layer, depth[, relative_depth], <metric columns>``), one line per model.

    Against the layer names (placed by depth); against relative depth when the models' depths differ.
    """
    names = [c for c in METRIC_LABELS if c in metrics.columns]
    relative = relative_positions(metrics) is not None
    fig = new_figure(figsize=(4.2 * len(names), 3.6), dpi=120)
    axes = fig.subplots(1, len(names), squeeze=False)
    colors = color_map(list(metrics["model"]))
    for ax, name in zip(axes[0], names):
        for model, rows in metrics.groupby("model", sort=False):
            if relative:
                rows = rows.sort_values("relative_depth", kind="stable")
                ax.plot(
                    rows["relative_depth"], rows[name], marker="o", markersize=3, color=colors[model], label=str(model)
                )
                continue
            x = list(rows["depth"]) if "depth" in rows else list(range(len(rows)))  # models aligned by depth
            ax.plot(x, rows[name], marker="o", markersize=3, color=colors[model], label=str(model))
            ticks = list(range(0, len(rows), max(1, len(rows) // 8)))
            ax.set_xticks([x[t] for t in ticks], [str(rows["layer"].iloc[t]) for t in ticks], fontsize=PNG_TEXT_PT)
        ax.set_title(METRIC_LABELS[name], fontsize=9)
        ax.set_xlabel(RELATIVE_AXIS if relative else "layer (embed, then block)", fontsize=PNG_TEXT_PT)
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=PNG_TEXT_PT, frameon=False)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig
