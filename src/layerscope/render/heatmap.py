"""Heatmaps: residual vectors across layers (seed 001), layer-by-layer similarity, logit lens.

Inputs are ready-made arrays; colour ranges are passed in, nothing is computed here. Rows are labelled
with layer names (``embed``, ``0``..``n-1``, ``norm``; see :mod:`layerscope.capture.layer_spec`). The
``*_figure`` functions return plotly figures, the ``*_png`` ones :class:`matplotlib.figure.Figure`
objects (no pyplot), which the run directory writes as PNG.
"""

from __future__ import annotations

import textwrap
import warnings
from dataclasses import dataclass

import numpy as np
import plotly.graph_objects as go
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from plotly.subplots import make_subplots

from .static import new_figure


@dataclass(frozen=True)
class ResidualPanel:
    """One prompt's residual at one position in every layer.

    Attributes:
        title: e.g. ``'5+2= @ -1 ("=")'``.
        values: ``(L, d_model)`` the residual vectors, one row per layer.
        mean: ``(L,)`` per-layer mean; rms: ``(L,)`` per-layer root mean square.
    """

    title: str
    values: np.ndarray
    mean: np.ndarray
    rms: np.ndarray


def residual_figure(panels: list[ResidualPanel], layer_names: list[str], zmax: float, title: str) -> go.Figure:
    """Side-by-side heatmaps (rows = layers, columns = dimensions) with a mean/RMS strip before each.

    All panels share one diverging colour scale ``[-zmax, zmax]``; the mean/RMS strips share another.
    """
    n = len(panels)
    strip = min(0.04, 0.25 / n)  # many prompts: the strips narrow with the panels, every width stays positive
    fig = make_subplots(
        rows=1,
        cols=2 * n,
        column_widths=[strip, 0.96 / n - strip] * n if n else None,
        horizontal_spacing=min(0.01, 0.5 / max(2 * n - 1, 1)),
        shared_yaxes=True,
        subplot_titles=[t for p in panels for t in ("mean | rms", p.title)],
    )
    strip_max = max(float(np.max(np.abs(np.stack([p.mean, p.rms])))) for p in panels) or 1.0
    for index, panel in enumerate(panels):
        col = 2 * index + 1
        strip = np.stack([panel.mean, panel.rms], axis=1)
        fig.add_trace(
            go.Heatmap(
                z=strip,
                x=["mean", "rms"],
                y=layer_names,
                coloraxis="coloraxis2",
                hovertemplate="layer %{y}<br>%{x}: %{z:.4g}<extra></extra>",
            ),
            row=1,
            col=col,
        )
        fig.add_trace(
            go.Heatmap(
                z=panel.values,
                y=layer_names,
                coloraxis="coloraxis",
                hovertemplate="layer %{y}<br>dim %{x}<br>value %{z:.4g}<extra></extra>",
            ),
            row=1,
            col=col + 1,
        )
    fig.update_layout(
        title=dict(text=title, x=0.5),
        template="plotly_white",
        coloraxis=dict(colorscale="RdBu_r", cmin=-zmax, cmax=zmax, colorbar=dict(title="value", x=1.0)),
        coloraxis2=dict(colorscale="RdBu_r", cmin=-strip_max, cmax=strip_max, showscale=False),
        height=max(420, 22 * len(layer_names) + 160),
        margin=dict(l=10, r=10, t=80, b=40),
    )
    fig.update_yaxes(type="category")  # layer names such as "0" are names, not numbers
    fig.update_yaxes(autorange="reversed", title_text="layer", row=1, col=1)
    fig.update_xaxes(title_text="dimension")
    return fig


def residual_png(panels: list[ResidualPanel], layer_names: list[str], zmax: float, title: str) -> Figure:
    """The static version of :func:`residual_figure`."""
    n = len(panels)
    fig = new_figure(figsize=(min(6 * n + 1, 30), 0.28 * len(layer_names) + 2.2), dpi=120)
    axes = fig.subplots(1, 2 * n, gridspec_kw={"width_ratios": [1, 14] * n}, squeeze=False)
    strip_max = max(float(np.max(np.abs(np.stack([p.mean, p.rms])))) for p in panels) or 1.0
    image = None
    for index, panel in enumerate(panels):
        strip_ax, main_ax = axes[0, 2 * index], axes[0, 2 * index + 1]
        strip_ax.imshow(
            np.stack([panel.mean, panel.rms], 1), aspect="auto", cmap="RdBu_r", vmin=-strip_max, vmax=strip_max
        )
        strip_ax.set_xticks([0, 1], ["mean", "rms"], fontsize=7, rotation=90)
        strip_ax.set_yticks(range(len(layer_names)), layer_names if index == 0 else [""] * len(layer_names), fontsize=7)
        if index == 0:
            strip_ax.set_ylabel("layer", fontsize=8)
        image = main_ax.imshow(
            panel.values, aspect="auto", cmap="RdBu_r", vmin=-zmax, vmax=zmax, interpolation="nearest"
        )
        main_ax.set_yticks([])
        main_ax.set_title(panel.title, fontsize=9)
        main_ax.set_xlabel("dimension", fontsize=8)
    fig.colorbar(image, ax=axes.ravel().tolist(), shrink=0.8, pad=0.01)
    fig.suptitle(title, fontsize=11)
    return fig


def matrix_figure(matrices: dict[str, np.ndarray], labels: list[str], title: str, boundaries: list[int]) -> go.Figure:
    """Layer-by-layer similarity matrices side by side, phase boundaries drawn as lines."""
    names = list(matrices)
    fig = make_subplots(rows=1, cols=len(names), subplot_titles=names, horizontal_spacing=0.08)
    for col, name in enumerate(names, start=1):
        fig.add_trace(
            go.Heatmap(
                z=matrices[name],
                x=labels,
                y=labels,
                coloraxis="coloraxis",
                hovertemplate="%{y} vs %{x}: %{z:.3f}<extra></extra>",
            ),
            row=1,
            col=col,
        )
        for b in boundaries:
            for kind in ("x", "y"):
                line = dict(
                    type="line", line=dict(color="black", width=1.5, dash="dot"), xref=f"x{col}", yref=f"y{col}"
                )
                pos = b - 0.5
                if kind == "x":
                    fig.add_shape(**line, x0=pos, x1=pos, y0=-0.5, y1=len(labels) - 0.5)
                else:
                    fig.add_shape(**line, y0=pos, y1=pos, x0=-0.5, x1=len(labels) - 0.5)
    fig.update_layout(
        title=dict(text=title, x=0.5),
        template="plotly_white",
        coloraxis=dict(colorscale="Viridis", colorbar=dict(title="similarity")),
        height=560,
        margin=dict(l=10, r=10, t=80, b=10),
    )
    fig.update_xaxes(type="category", title_text="layer")
    fig.update_yaxes(type="category", autorange="reversed", title_text="layer")
    return fig


def matrix_png(matrices: dict[str, np.ndarray], labels: list[str], title: str, boundaries: list[int]) -> Figure:
    """The static version of :func:`matrix_figure`."""
    fig = new_figure(figsize=(6 * len(matrices), 5.4), dpi=120)
    axes = fig.subplots(1, len(matrices), squeeze=False)
    for ax, (name, matrix) in zip(axes[0], matrices.items()):
        image = ax.imshow(matrix, cmap="viridis", interpolation="nearest")
        ax.set_title(name)
        step = max(1, len(labels) // 12)
        ax.set_xticks(range(0, len(labels), step), labels[::step], rotation=90, fontsize=7)
        ax.set_yticks(range(0, len(labels), step), labels[::step], fontsize=7)
        ax.set_xlabel("layer", fontsize=8)
        ax.set_ylabel("layer", fontsize=8)
        for b in boundaries:
            ax.axvline(b - 0.5, color="white", linestyle=":", linewidth=1.2)
            ax.axhline(b - 0.5, color="white", linestyle=":", linewidth=1.2)
        fig.colorbar(image, ax=ax, shrink=0.8)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def visible_token(text: str) -> str:
    """A token as a person can see it: spaces as ``␣``, ``\\n`` and ``\\t`` spelled, other control
    characters as ``\\xNN``, the empty token as ``∅``."""
    if text == "":
        return "∅"
    out = []
    for char in text:
        if char == " ":
            out.append("␣")
        elif char == "\n":
            out.append("\\n")
        elif char == "\t":
            out.append("\\t")
        elif char == "\r":
            out.append("\\r")
        elif ord(char) < 32 or 0x7F <= ord(char) < 0xA0:
            out.append(f"\\x{ord(char):02x}")
        else:
            out.append(char)
    return "".join(out)


def lens_figure(
    prob: np.ndarray,
    top_tokens: list[list[str]],
    prompts: list[str],
    labels: list[str],
    title: str,
    hits: np.ndarray | None = None,
    hover: list[list[str]] | None = None,
) -> go.Figure:
    """Logit lens: rows = layers, columns = prompts; colour = probability of the target, text = top-1 token.

    Tokens are shown with :func:`visible_token`. ``hits`` ``(layer, prompt)`` bool marks the cells whose
    top-1 token is the target (outlined); ``hover`` gives each cell's hover text (top-k and the target).
    """
    shown = [[visible_token(t) for t in row] for row in top_tokens]
    fig = go.Figure(
        go.Heatmap(
            z=prob,
            x=prompts,
            y=labels,
            text=shown,
            texttemplate="%{text}",
            textfont=dict(size=10),
            colorscale="Blues",
            zmin=0,
            zmax=1,
            colorbar=dict(title="p(target)"),
            customdata=hover if hover is not None else shown,
            hovertemplate="%{x}<br>layer %{y}<br>%{customdata}<extra></extra>",
        )
    )
    if hits is not None and np.any(hits):
        rows, cols = np.nonzero(hits)
        fig.add_trace(
            go.Scatter(
                x=[prompts[j] for j in cols],
                y=[labels[i] for i in rows],
                mode="markers",
                marker=dict(symbol="square-open", size=26, color="#d62728", line=dict(width=2)),
                name="top-1 = target",
                hoverinfo="skip",
                showlegend=True,
            )
        )
        fig.update_layout(legend=dict(orientation="h", x=0, y=1.02, yanchor="bottom"))
    fig.update_layout(
        title=dict(text=title, x=0.5),
        template="plotly_white",
        height=max(420, 24 * len(labels) + 160),
        margin=dict(l=10, r=10, t=70, b=10),
    )
    fig.update_xaxes(type="category")
    fig.update_yaxes(type="category", autorange="reversed", title="layer")
    return fig


def lens_png(
    prob: np.ndarray,
    top_tokens: list[list[str]],
    prompts: list[str],
    labels: list[str],
    title: str,
    hits: np.ndarray | None = None,
) -> Figure:
    """The static version of :func:`lens_figure` (cells whose top-1 is the target outlined in red)."""
    fig = new_figure(figsize=(1.4 * len(prompts) + 3, 0.3 * len(labels) + 2), dpi=120)
    ax = fig.add_subplot()
    image = ax.imshow(prob, cmap="Blues", vmin=0, vmax=1, aspect="auto")
    for i in range(prob.shape[0]):
        for j in range(prob.shape[1]):
            if hits is not None and hits[i, j]:
                ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, edgecolor="#d62728", linewidth=1.5))
            ax.text(
                j,
                i,
                visible_token(top_tokens[i][j]),
                ha="center",
                va="center",
                fontsize=7,
                color="black" if prob[i, j] < 0.6 else "white",
            )
    ax.set_xticks(range(len(prompts)), prompts, rotation=30, ha="right", fontsize=8)
    ax.set_yticks(range(len(labels)), labels, fontsize=7)
    ax.set_ylabel("layer", fontsize=8)
    ax.set_title("\n".join(textwrap.wrap(title, max(40, int(12 * (1.4 * len(prompts) + 3))))), fontsize=10)
    fig.colorbar(image, ax=ax, label="p(target)")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Glyph .* missing from font")
        fig.tight_layout()
    return fig
