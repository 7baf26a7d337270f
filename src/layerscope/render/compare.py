"""Figures of ``compare``, each one description drawn as plotly and as PNG: CKA heatmaps per pair of models
(:class:`CkaFigure`), error-by-layer lines, the agreement table (:class:`AgreementTable`)."""

from __future__ import annotations

from dataclasses import dataclass

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


#: the pairs a PNG shows (one row each); the HTML shows every pair, one at a time
PNG_PAIRS = 6


@dataclass
class CkaPanel:
    """One heatmap: ``matrix`` ``(La, Lb)`` (rows: layers of ``a``, columns: layers of ``b``; NaN: undefined) and
    ``marks``, the ``(row, column)`` of each row's best match."""

    label: str
    matrix: np.ndarray
    marks: list[tuple[int, int]]


@dataclass
class CkaPair:
    """One pair of models: its layer names and one :class:`CkaPanel` per kind of CKA (linear, debiased)."""

    a: str
    b: str
    layers_a: list[str]
    layers_b: list[str]
    panels: list[CkaPanel]

    @property
    def label(self) -> str:
        return f"{self.a} vs {self.b}"


@dataclass
class CkaFigure:
    """One description of the CKA heatmaps of ``compare``, drawn as plotly (a selector shows one pair at a time)
    and as PNG (one row per pair, the first :data:`PNG_PAIRS`): both read the same matrices and marks."""

    title: str
    pairs: list[CkaPair]

    @classmethod
    def of(cls, pairs, *, title: str) -> CkaFigure:
        """From :class:`~layerscope.analysis.pair_cka.PairCKA` results."""
        described = []
        for pair in pairs:
            panels = []
            for kind, label in _KINDS:
                best = pair.best(debiased=kind == "debiased")
                marks = [(i, j) for i, j in enumerate(best) if j is not None]
                panels.append(CkaPanel(label, np.asarray(getattr(pair, kind), dtype=float), marks))
            described.append(CkaPair(pair.a, pair.b, list(pair.layers_a), list(pair.layers_b), panels))
        return cls(title, described)

    def plotly(self) -> go.Figure:
        """Per pair: the heatmaps side by side, each row's best match outlined; several pairs: a selector."""
        fig = make_subplots(rows=1, cols=2, subplot_titles=[label for _, label in _KINDS], horizontal_spacing=0.1)
        per_pair = []
        for p, pair in enumerate(self.pairs):
            for col, panel in enumerate(pair.panels, start=1):
                fig.add_trace(
                    go.Heatmap(
                        z=np.where(np.isnan(panel.matrix), None, panel.matrix).tolist(),
                        x=pair.layers_b,
                        y=pair.layers_a,
                        coloraxis="coloraxis",
                        visible=p == 0,
                        name=panel.label,
                        hovertemplate=f"{pair.a} %{{y}} vs {pair.b} %{{x}}: %{{z:.3f}}<extra>{panel.label}</extra>",
                    ),
                    row=1,
                    col=col,
                )
                fig.add_trace(
                    go.Scatter(
                        x=[pair.layers_b[j] for _, j in panel.marks],
                        y=[pair.layers_a[i] for i, _ in panel.marks],
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
            per_pair.append(2 * len(pair.panels))
        fig.update_xaxes(type="category", title_text="layer of B")
        fig.update_yaxes(type="category", autorange="reversed", title_text="layer of A")
        first = self.pairs[0].label if self.pairs else ""
        layout = dict(
            title=dict(text=f"{self.title}<br><sub>{first}</sub>", x=0.5),
            template="plotly_white",
            coloraxis=dict(colorscale="Viridis", cmin=0, cmax=1, colorbar=dict(title=dict(text="CKA", side="right"))),
            height=600,
            margin=dict(l=10, r=10, t=100, b=10),
            legend=dict(orientation="h", y=-0.12),
        )
        if len(self.pairs) > 1:
            buttons = []
            total, start = sum(per_pair), 0
            for pair, count in zip(self.pairs, per_pair):
                visible = [start <= i < start + count for i in range(total)]
                start += count
                title = {"title.text": f"{self.title}<br><sub>{pair.label}</sub>"}
                buttons.append(dict(label=pair.label, method="update", args=[{"visible": visible}, title]))
            layout["updatemenus"] = [dict(buttons=buttons, x=0.0, xanchor="left", y=1.18, yanchor="top")]
        fig.update_layout(**layout)
        return fig

    def png(self) -> Figure:
        """One row per pair (the first :data:`PNG_PAIRS`), the heatmaps side by side, best matches outlined."""
        shown = self.pairs[:PNG_PAIRS]
        fig = new_figure(figsize=(11, 4.8 * len(shown)), dpi=110, layout="constrained")
        with font_fallback(self):
            axes = fig.subplots(len(shown), 2, squeeze=False)
            for row, pair in zip(axes, shown):
                for ax, panel in zip(row, pair.panels):
                    image = ax.imshow(
                        np.ma.masked_invalid(panel.matrix),
                        cmap="viridis",
                        vmin=0,
                        vmax=1,
                        interpolation="nearest",
                        aspect="auto",
                    )
                    if panel.marks:
                        ys, xs = zip(*panel.marks)
                        ax.scatter(xs, ys, marker="s", s=40, facecolors="none", edgecolors="#d62728", linewidths=1.2)
                    step_b = max(1, len(pair.layers_b) // 14)
                    step_a = max(1, len(pair.layers_a) // 14)
                    ax.set_xticks(range(0, len(pair.layers_b), step_b), pair.layers_b[::step_b], rotation=90)
                    ax.set_yticks(range(0, len(pair.layers_a), step_a), pair.layers_a[::step_a])
                    ax.tick_params(labelsize=PNG_TEXT_PT)
                    ax.set_xlabel(f"layer of {pair.b}", fontsize=PNG_TEXT_PT)
                    ax.set_ylabel(f"layer of {pair.a}", fontsize=PNG_TEXT_PT)
                    ax.set_title(f"{panel.label}: {pair.label}", fontsize=PNG_TEXT_PT + 1)
                    fig.colorbar(image, ax=ax, shrink=0.8)
            more = len(self.pairs) - len(shown)
            fig.suptitle(self.title + (f" ({more} more pairs in the HTML)" if more > 0 else ""))
        return fig


def cka_figure(pairs, *, title: str) -> go.Figure:
    """:class:`CkaFigure`, interactive."""
    return CkaFigure.of(pairs, title=title).plotly()


def cka_png(pairs, *, title: str) -> Figure:
    """:class:`CkaFigure` as a PNG."""
    return CkaFigure.of(pairs, title=title).png()


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


@dataclass
class AgreementTable:
    """One description of compare's agreement table: ``header`` (one heading per column) and ``rows`` (one row
    of text cells per model measured against the reference), drawn as a plotly table and as a PNG table that
    show the same text."""

    title: str
    header: list[str]
    rows: list[list[str]]

    @classmethod
    def of(cls, agreement: pd.DataFrame, *, title: str) -> AgreementTable:
        """From the ``agreement`` table of a compare result (see :data:`AGREEMENT_COLUMNS`)."""
        header, rows = agreement_cells(agreement)
        return cls(title, header, rows)

    def plotly(self) -> go.Figure:
        """The interactive table."""
        columns = [list(column) for column in zip(*self.rows)] if self.rows else [[] for _ in self.header]
        fig = go.Figure(
            go.Table(
                header=dict(values=self.header, fill_color="#e8eef6", align="left"),
                cells=dict(values=columns, align="left"),
            )
        )
        fig.update_layout(
            title=dict(text=self.title, x=0.5),
            template="plotly_white",
            height=160 + 44 * len(self.rows),  # room for a header and rows of two lines each
            margin=dict(t=60, b=10),
        )
        return fig

    def png(self) -> Figure:
        """The static table: the same cells, headings wrapped, text at least :data:`PNG_TEXT_PT` points."""
        import textwrap

        fig = new_figure(figsize=(12, 1.1 + 0.45 * (len(self.rows) + 1)), dpi=110, layout="constrained")
        with font_fallback(self):
            ax = fig.add_subplot()
            ax.axis("off")
            table = ax.table(
                cellText=self.rows or [[""] * len(self.header)],
                colLabels=[textwrap.fill(h, 14) for h in self.header],
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
            fig.suptitle(self.title, fontsize=PNG_TEXT_PT + 3)
        return fig


def agreement_figure(agreement: pd.DataFrame, *, title: str) -> go.Figure:
    """:class:`AgreementTable`, interactive."""
    return AgreementTable.of(agreement, title=title).plotly()


def agreement_png(agreement: pd.DataFrame, *, title: str) -> Figure:
    """:class:`AgreementTable` as a PNG."""
    return AgreementTable.of(agreement, title=title).png()
