"""Static PNGs of per-layer projections: a grid of small panels, one image per layer, metric curves.

Example:
    >>> grid_png(projection, titles, "grid.png", title="categories across layers")
    >>> layer_png(projection, ratios, "6", "layers/layer-06.png", title="layer 6")
    >>> metrics_png(metrics, "metrics.png", title="separation across layers")
"""

from __future__ import annotations

import math

import pandas as pd

from .palette import color_map
from .static import plt, save_png

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


def grid_png(table: pd.DataFrame, titles: dict[str, str], path, *, title: str) -> None:
    """One small panel per (model, layer) of ``table`` (``model, layer, set, label, pc1, pc2``); a row block per model."""
    models = list(dict.fromkeys(table["model"]))
    layers = list(dict.fromkeys(table["layer"]))
    colors = color_map(list(table["set"]))
    cols = min(len(layers), max(1, math.ceil(math.sqrt(len(layers) * 1.4))))
    block = math.ceil(len(layers) / cols)
    fig, axes = plt.subplots(block * len(models), cols, figsize=(2.3 * cols, 2.3 * block * len(models) + 0.8), dpi=110, squeeze=False)
    for m, model in enumerate(models):
        for i in range(block * cols):
            ax = axes[m * block + i // cols][i % cols]
            if i >= len(layers):
                ax.axis("off")
                continue
            rows = table[(table["model"] == model) & (table["layer"] == layers[i])]
            _panel(ax, rows, colors, labels=False, size=6)
            ax.set_title(f"{model}\n{titles.get(layers[i], layers[i])}" if len(models) > 1 else titles.get(layers[i], layers[i]), fontsize=7)
            ax.tick_params(labelsize=5)
    handles = [plt.Line2D([], [], marker="o", linestyle="", color=c, label=s) for s, c in colors.items()]
    fig.legend(handles=handles, loc="lower center", ncol=min(len(colors), 5), fontsize=7, frameon=False)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout(rect=(0, 0.06, 1, 0.97))
    save_png(fig, path)


def layer_png(table: pd.DataFrame, ratios: pd.DataFrame, layer: str, path, *, title: str) -> None:
    """The models side by side at one ``layer``, points labelled, axes titled with the variance share."""
    models = list(dict.fromkeys(table["model"]))
    colors = color_map(list(table["set"]))
    fig, axes = plt.subplots(1, len(models), figsize=(7 * len(models), 6.5), dpi=120, squeeze=False)
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
    save_png(fig, path)


def metrics_png(metrics: pd.DataFrame, path, *, title: str) -> None:
    """Each metric of ``metrics`` (``model, layer, <metric columns>``) against layer, one line per model."""
    names = [c for c in METRIC_LABELS if c in metrics.columns]
    fig, axes = plt.subplots(1, len(names), figsize=(4.2 * len(names), 3.6), dpi=120, squeeze=False)
    colors = color_map(list(metrics["model"]))
    for ax, name in zip(axes[0], names):
        for model, rows in metrics.groupby("model", sort=False):
            ax.plot(range(len(rows)), rows[name], marker="o", markersize=3, color=colors[model], label=str(model))
            ticks = list(range(0, len(rows), max(1, len(rows) // 8)))
            ax.set_xticks(ticks, [str(rows["layer"].iloc[t]) for t in ticks], fontsize=7)
        ax.set_title(METRIC_LABELS[name], fontsize=9)
        ax.set_xlabel("layer", fontsize=8)
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7, frameon=False)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    save_png(fig, path)
