"""One description of grouped bars (data and layout), drawn as an interactive plotly figure and as a PNG.

Example:
    >>> bars = GroupedBars("echo rate", ["gemma", "qwen"], [Bars("with BOS", [0.9, 0.5], ["9/10", "5/10"], "#4e79a7")])
    >>> bars.plotly().write_html("echo.html"); bars.png().savefig("echo.png")
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..fonts import font_fallback
from .line_figure import PNG_TEXT_PT


@dataclass
class Bars:
    """One group's bars: ``values[i]`` over ``categories[i]`` of the figure (None: no bar there), each with
    the text written above it."""

    name: str
    values: Sequence[float | None]
    texts: Sequence[str]
    color: str


@dataclass
class GroupedBars:
    """Bars of several groups side by side at each category. ``percent``: values are shares shown as %."""

    title: str
    categories: list[str]
    groups: list[Bars]
    y_title: str = ""
    y_range: tuple[float, float] | None = None
    percent: bool = False
    legend_title: str = ""

    def plotly(self):
        """The interactive figure (plotly ``go.Figure``)."""
        import plotly.graph_objects as go

        fig = go.Figure()
        for group in self.groups:
            shown = [(c, v, t) for c, v, t in zip(self.categories, group.values, group.texts) if v is not None]
            fig.add_trace(
                go.Bar(
                    name=group.name,
                    x=[c for c, _, _ in shown],
                    y=[v for _, v, _ in shown],
                    text=[t for _, _, t in shown],
                    textposition="outside",
                    marker_color=group.color,
                )
            )
        y_axis = dict(title=self.y_title)
        if self.y_range:
            y_axis["range"] = list(self.y_range)
        if self.percent:
            y_axis["tickformat"] = ".0%"
        fig.update_layout(
            title=dict(text=self.title, x=0.5),
            template="plotly_white",
            barmode="group",
            yaxis=y_axis,
            legend=dict(title=self.legend_title),
            height=460,
            margin=dict(l=10, r=10, t=60, b=10),
        )
        return fig

    def png(self):
        """The static figure (matplotlib ``Figure``), text at least :data:`PNG_TEXT_PT` points."""
        from matplotlib.ticker import PercentFormatter

        from .static import new_figure

        n = max(len(self.groups), 1)
        width = 0.8 / n
        fig = new_figure(figsize=(min(3 + 1.4 * len(self.categories) * n, 16), 4.6), dpi=110, layout="constrained")
        with font_fallback(self):
            ax = fig.add_subplot()
            for k, group in enumerate(self.groups):
                at = [(i, v, t) for i, (v, t) in enumerate(zip(group.values, group.texts)) if v is not None]
                x = [i - 0.4 + width * (k + 0.5) for i, _, _ in at]
                drawn = ax.bar(x, [v for _, v, _ in at], width=width * 0.95, color=group.color, label=group.name)
                ax.bar_label(drawn, labels=[t for _, _, t in at], fontsize=PNG_TEXT_PT, padding=2)
            ax.set_xticks(range(len(self.categories)), self.categories)
            ax.tick_params(labelsize=PNG_TEXT_PT)
            ax.set_ylabel(self.y_title, fontsize=PNG_TEXT_PT)
            if self.y_range:
                ax.set_ylim(*self.y_range)
            if self.percent:
                ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
            ax.grid(axis="y", alpha=0.3)
            ax.legend(title=self.legend_title or None, fontsize=PNG_TEXT_PT, title_fontsize=PNG_TEXT_PT, frameon=False)
            fig.suptitle(self.title, fontsize=PNG_TEXT_PT + 3)
        return fig
