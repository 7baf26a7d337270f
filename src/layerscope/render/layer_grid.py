"""Static figures of per-layer projections: a grid of small panels, one figure per layer, metric curves.

Each function returns a :class:`matplotlib.figure.Figure` (built with :func:`.static.new_figure`, no
pyplot); the run directory writes it as PNG.

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

from ..analysis.layer_projection import layer_order
from .palette import color_map
from .static import new_figure

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
                ax.text(x, y, f" {label}", color=colors[set_name], fontsize=6)


def grid_figure(table: pd.DataFrame, titles: dict[str, str], *, title: str) -> Figure:
    """One small panel per (model, layer) of ``table`` (``model, layer, depth, set, label, pc1, pc2``).

    A block of rows per model; ``titles`` maps a layer name to its panel title (``embed``, ``block 6``).
    """
    models = list(dict.fromkeys(table["model"]))
    layers = layer_order(table)
    colors = color_map(list(table["set"]))
    cols = min(len(layers), max(1, math.ceil(math.sqrt(len(layers) * 1.4))))
    block = math.ceil(len(layers) / cols)
    fig = new_figure(figsize=(2.3 * cols, 2.3 * block * len(models) + 0.8), dpi=110)
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
            ax.set_title(f"{model}\n{name}" if len(models) > 1 else name, fontsize=7)
            ax.tick_params(labelsize=5)
    handles = [Line2D([], [], marker="o", linestyle="", color=c, label=s) for s, c in colors.items()]
    fig.legend(handles=handles, loc="lower center", ncol=min(len(colors), 5), fontsize=7, frameon=False)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout(rect=(0, 0.06, 1, 0.97))
    return fig


def layer_figure(table: pd.DataFrame, ratios: pd.DataFrame, layer: str, *, title: str) -> Figure:
    """The models side by side at one ``layer`` (a name), points labelled, axes titled with the variance share."""
    models = list(dict.fromkeys(table["model"]))
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
    axes[0][-1].legend(loc="best", fontsize=7, frameon=False)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def metrics_figure(metrics: pd.DataFrame, *, title: str) -> Figure:
    """Each metric of ``metrics`` (``model, layer, depth, <metric columns>``) against depth, one line per model."""
    names = [c for c in METRIC_LABELS if c in metrics.columns]
    fig = new_figure(figsize=(4.2 * len(names), 3.6), dpi=120)
    axes = fig.subplots(1, len(names), squeeze=False)
    colors = color_map(list(metrics["model"]))
    for ax, name in zip(axes[0], names):
        for model, rows in metrics.groupby("model", sort=False):
            x = list(rows["depth"]) if "depth" in rows else list(range(len(rows)))  # models aligned by depth
            ax.plot(x, rows[name], marker="o", markersize=3, color=colors[model], label=str(model))
            ticks = list(range(0, len(rows), max(1, len(rows) // 8)))
            ax.set_xticks([x[t] for t in ticks], [str(rows["layer"].iloc[t]) for t in ticks], fontsize=7)
        ax.set_title(METRIC_LABELS[name], fontsize=9)
        ax.set_xlabel("layer (embed, then block)", fontsize=8)
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7, frameon=False)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig
