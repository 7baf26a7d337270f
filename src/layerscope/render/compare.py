"""Figures of ``compare``: CKA heatmaps per pair of models, error-by-layer lines, the agreement table."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from matplotlib.figure import Figure
from plotly.subplots import make_subplots

from ..fonts import font_fallback
from .line_figure import PNG_TEXT_PT, LineFigure
from .lines import layer_lines
from .static import new_figure

_KINDS = (("linear", "linear CKA"), ("debiased", "debiased CKA"))


def _pair_label(pair) -> str:
    return f"{pair.a} vs {pair.b}"


def cka_figure(pairs, *, title: str) -> go.Figure:
    """Per pair: linear and debiased CKA heatmaps side by side (rows = layers of A, columns = layers of B), each
    row's best match outlined; with several pairs, a selector shows one pair at a time."""
    fig = make_subplots(rows=1, cols=2, subplot_titles=[label for _, label in _KINDS], horizontal_spacing=0.1)
    per_pair = []
    for p, pair in enumerate(pairs):
        traces = 0
        for col, (kind, label) in enumerate(_KINDS, start=1):
            matrix = getattr(pair, kind)
            fig.add_trace(
                go.Heatmap(
                    z=np.where(np.isnan(matrix), None, matrix).tolist(),
                    x=list(pair.layers_b),
                    y=list(pair.layers_a),
                    coloraxis="coloraxis",
                    visible=p == 0,
                    name=label,
                    hovertemplate=f"{pair.a} %{{y}} vs {pair.b} %{{x}}: %{{z:.3f}}<extra>{label}</extra>",
                ),
                row=1,
                col=col,
            )
            best = pair.best(debiased=kind == "debiased")
            rows = [i for i, j in enumerate(best) if j is not None]
            fig.add_trace(
                go.Scatter(
                    x=[pair.layers_b[best[i]] for i in rows],
                    y=[pair.layers_a[i] for i in rows],
                    mode="markers",
                    marker=dict(symbol="square-open", size=11, color="#d62728", line=dict(width=2)),
                    name="best match",
                    showlegend=col == 1,
                    visible=p == 0,
                    hovertemplate=f"best match of {pair.a} %{{y}}: {pair.b} %{{x}}<extra></extra>",
                ),
                row=1,
                col=col,
            )
            traces += 2
        per_pair.append(traces)
    fig.update_xaxes(type="category", title_text="layer of B")
    fig.update_yaxes(type="category", autorange="reversed", title_text="layer of A")
    first = pairs[0] if pairs else None
    layout = dict(
        title=dict(text=f"{title}<br><sub>{_pair_label(first) if first else ''}</sub>", x=0.5),
        template="plotly_white",
        coloraxis=dict(colorscale="Viridis", cmin=0, cmax=1, colorbar=dict(title=dict(text="CKA", side="right"))),
        height=600,
        margin=dict(l=10, r=10, t=100, b=10),
        legend=dict(orientation="h", y=-0.12),
    )
    if len(pairs) > 1:
        buttons = []
        total = sum(per_pair)
        start = 0
        for pair, count in zip(pairs, per_pair):
            visible = [start <= i < start + count for i in range(total)]
            start += count
            buttons.append(
                dict(
                    label=_pair_label(pair),
                    method="update",
                    args=[{"visible": visible}, {"title.text": f"{title}<br><sub>{_pair_label(pair)}</sub>"}],
                )
            )
        layout["updatemenus"] = [dict(buttons=buttons, x=0.0, xanchor="left", y=1.18, yanchor="top")]
    fig.update_layout(**layout)
    return fig


def cka_png(pairs, *, title: str) -> Figure:
    """The static version of :func:`cka_figure`: one row per pair (the first 6), linear and debiased."""
    shown = list(pairs)[:6]
    fig = new_figure(figsize=(11, 4.8 * len(shown)), dpi=110, layout="constrained")
    with font_fallback():
        axes = fig.subplots(len(shown), 2, squeeze=False)
        for row, pair in zip(axes, shown):
            for ax, (kind, label) in zip(row, _KINDS):
                matrix = getattr(pair, kind)
                image = ax.imshow(
                    np.ma.masked_invalid(matrix), cmap="viridis", vmin=0, vmax=1, interpolation="nearest", aspect="auto"
                )
                best = pair.best(debiased=kind == "debiased")
                marks = [(j, i) for i, j in enumerate(best) if j is not None]
                if marks:
                    xs, ys = zip(*marks)
                    ax.scatter(xs, ys, marker="s", s=40, facecolors="none", edgecolors="#d62728", linewidths=1.2)
                step_b = max(1, len(pair.layers_b) // 14)
                step_a = max(1, len(pair.layers_a) // 14)
                ax.set_xticks(range(0, len(pair.layers_b), step_b), pair.layers_b[::step_b], rotation=90, fontsize=7)
                ax.set_yticks(range(0, len(pair.layers_a), step_a), pair.layers_a[::step_a], fontsize=7)
                ax.set_xlabel(f"layer of {pair.b}", fontsize=8)
                ax.set_ylabel(f"layer of {pair.a}", fontsize=8)
                ax.set_title(f"{label}: {_pair_label(pair)}", fontsize=9)
                fig.colorbar(image, ax=ax, shrink=0.8)
        fig.suptitle(
            title + (f" ({len(pairs) - len(shown)} more pairs in the HTML)" if len(pairs) > len(shown) else "")
        )
    return fig


ERROR_PANELS = {"relative_error": "relative error ||x − r|| / ||r||", "cosine": "cosine with the reference"}


def error_lines(errors: pd.DataFrame, *, title: str) -> LineFigure:
    """Relative error (log scale; a zero error is left out, not drawn to the bottom) and cosine against the
    reference, layer by layer, one line per model (``errors``: ``model, layer, relative_error, cosine``)."""
    log = {"relative_error"} if (errors["relative_error"] > 0).any() else set()
    return layer_lines(errors, ERROR_PANELS, title=title, log=log)


def errors_figure(errors: pd.DataFrame, *, title: str) -> go.Figure:
    """:func:`error_lines`, interactive."""
    return error_lines(errors, title=title).plotly()


def errors_png(errors: pd.DataFrame, *, title: str) -> Figure:
    """:func:`error_lines` as a PNG."""
    return error_lines(errors, title=title).png()


AGREEMENT_COLUMNS = {
    "model": "model",
    "top1_agreement": "top-1 agreement",
    "mean_kl": "mean KL (nats)",
    "max_kl": "max KL",
    "last_block_relative_error": "relative error, last block",
    "max_relative_error": "max relative error",
    "grows_most_at": "error grows most at block",
    "weight_relative_error": "mean weight error",
}


def _cell(value) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "–"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def agreement_cells(agreement: pd.DataFrame) -> tuple[list[str], list[list[str]]]:
    """The agreement table as people read it: column headings and one row of text cells per model."""
    columns = [c for c in AGREEMENT_COLUMNS if c in agreement.columns]
    rows = [[_cell(v) for v in row] for row in agreement[columns].itertuples(index=False)]
    return [AGREEMENT_COLUMNS[c] for c in columns], rows


def agreement_figure(agreement: pd.DataFrame, *, title: str) -> go.Figure:
    """The agreement table: one row per model measured against the reference."""
    header, rows = agreement_cells(agreement)
    fig = go.Figure(
        go.Table(
            header=dict(values=header, fill_color="#e8eef6", align="left"),
            cells=dict(values=[list(column) for column in zip(*rows)] if rows else [[] for _ in header], align="left"),
        )
    )
    fig.update_layout(
        title=dict(text=title, x=0.5),
        template="plotly_white",
        height=160 + 44 * len(agreement),  # room for a header and rows of two lines each
        margin=dict(t=60, b=10),
    )
    return fig


def agreement_png(agreement: pd.DataFrame, *, title: str) -> Figure:
    """The agreement table as a PNG, from the same cells as :func:`agreement_figure`."""
    import textwrap

    header, rows = agreement_cells(agreement)
    fig = new_figure(figsize=(12, 1.1 + 0.45 * (len(rows) + 1)), dpi=110, layout="constrained")
    with font_fallback():
        ax = fig.add_subplot()
        ax.axis("off")
        table = ax.table(
            cellText=rows or [[""] * len(header)],
            colLabels=[textwrap.fill(h, 14) for h in header],
            loc="upper center",
            cellLoc="left",
            colLoc="left",
        )
        table.auto_set_font_size(False)
        table.set_fontsize(PNG_TEXT_PT)
        table.scale(1, 1.6)
        for (row, _), cell in table.get_celld().items():
            if row == 0:
                cell.set_facecolor("#e8eef6")
                cell.set_height(cell.get_height() * 1.6)
        fig.suptitle(title, fontsize=PNG_TEXT_PT + 3)
    return fig
