"""One description of a line figure (data and layout), drawn as an interactive plotly figure and as a PNG.

A :class:`LineFigure` holds panels side by side, each with its lines; :meth:`LineFigure.plotly` and
:meth:`LineFigure.png` derive both views from it, so the HTML and the PNG show the same numbers, titles and
axes. On a log axis a value that is not above zero has no place: it is left out (a gap in the line, never a
line down to the bottom of the panel) and the panel's title says how many were left out.

Example:
    >>> fig = LineFigure("scale", [Panel("mean residual norm", [Line("gemma", ["embed", "0"], [1.0, 9.5], "#4e79a7")],
    ...                                  log_y=True)])
    >>> fig.plotly().write_html("norms.html"); fig.png().savefig("norms.png")
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass, field

from ..fonts import font_fallback

#: the smallest text in a PNG, in points (titles are larger)
PNG_TEXT_PT = 9
_PNG_DPI = 110
_PANEL_INCHES = (5.6, 4.2)  # width, height of one panel


@dataclass
class Line:
    """One line of a panel: ``y`` at the ``x`` positions (category names or numbers), ``len(x) == len(y)``.

    ``hover``: one text per point (the interactive view only); ``dash``: drawn dashed; ``legend``: listed in
    the legend (a line of the same name in another panel is listed once).
    """

    name: str
    x: Sequence
    y: Sequence[float]
    color: str
    hover: Sequence[str] | None = None
    dash: bool = False
    legend: bool = True
    markers: bool = True


@dataclass
class Panel:
    """One panel: a title, its lines and its axes. ``categories``: ``x`` are names shown in order (layers);
    else numbers. ``x_range`` / ``y_range``: fixed limits (None: fitted)."""

    title: str
    lines: list[Line] = field(default_factory=list)
    x_title: str = "layer"
    y_title: str = ""
    log_y: bool = False
    categories: bool = True
    x_range: tuple[float, float] | None = None
    y_range: tuple[float, float] | None = None

    def shown(self, line: Line) -> list[float | None]:
        """``line.y`` as drawn: None where a value is missing, or not above zero on a log axis."""
        return [None if not _drawable(v, self.log_y) else float(v) for v in line.y]

    def left_out(self) -> int:
        """How many finite values this log panel leaves out (0 and below); 0 on a linear axis."""
        if not self.log_y:
            return 0
        return sum(1 for line in self.lines for v in line.y if _finite(v) and not v > 0)

    def heading(self) -> str:
        missing = self.left_out()
        return (
            f"{self.title} (log; {missing} zero value{'s' if missing != 1 else ''} not drawn)"
            if missing
            else self.title
        )


def _finite(value) -> bool:
    return value is not None and isinstance(value, (int, float)) and math.isfinite(value)


def _drawable(value, log: bool) -> bool:
    return _finite(value) and (not log or value > 0)


@dataclass
class LineFigure:
    """Panels side by side under one title; see the module."""

    title: str
    panels: list[Panel]
    height: int = 420

    def categories(self, panel: Panel) -> list[str]:
        """The category names of a panel's x axis, in the order the lines meet them."""
        return list(dict.fromkeys(str(x) for line in panel.lines for x in line.x))

    def plotly(self):
        """The interactive figure (plotly ``go.Figure``)."""
        import plotly.graph_objects as go
        from plotly.subplots import make_subplots

        fig = make_subplots(rows=1, cols=max(len(self.panels), 1), subplot_titles=[p.heading() for p in self.panels])
        listed: set[str] = set()
        for col, panel in enumerate(self.panels, start=1):
            for line in panel.lines:
                fig.add_trace(
                    go.Scatter(
                        x=[str(x) for x in line.x] if panel.categories else list(line.x),
                        y=panel.shown(line),
                        text=list(line.hover) if line.hover is not None else None,
                        hovertemplate="%{text}<br>%{x}: %{y:.4g}" if line.hover else None,
                        name=line.name,
                        legendgroup=line.name,
                        showlegend=line.legend and line.name not in listed,
                        mode="lines+markers" if line.markers else "lines",
                        line=dict(color=line.color, dash="dash" if line.dash else None),
                    ),
                    row=1,
                    col=col,
                )
                listed |= {line.name} if line.legend else set()
            fig.update_xaxes(
                title_text=panel.x_title,
                type="category" if panel.categories else None,
                range=list(panel.x_range) if panel.x_range else None,
                row=1,
                col=col,
            )
            y_axis = dict(title_text=panel.y_title or None, row=1, col=col)
            if panel.log_y:
                y_axis |= dict(type="log", dtick=1)  # a label per decade
            if panel.y_range:
                y_axis["range"] = list(panel.y_range)
            fig.update_yaxes(**y_axis)
        fig.update_layout(title=dict(text=self.title, x=0.5), template="plotly_white", height=self.height)
        return fig

    def png(self):
        """The static figure (matplotlib ``Figure``, no pyplot), text at least :data:`PNG_TEXT_PT` points."""
        from .static import new_figure

        n = max(len(self.panels), 1)
        width, height = _PANEL_INCHES
        fig = new_figure(figsize=(min(width * n, 16), height), dpi=_PNG_DPI, layout="constrained")
        with font_fallback(self):
            axes = fig.subplots(1, n, squeeze=False)[0]
            handles: dict[str, object] = {}
            for ax, panel in zip(axes, self.panels):
                names = self.categories(panel) if panel.categories else None
                for line in panel.lines:
                    x = [names.index(str(v)) for v in line.x] if names is not None else list(line.x)
                    y = [math.nan if v is None else v for v in panel.shown(line)]
                    (drawn,) = ax.plot(
                        x,
                        y,
                        marker="o" if line.markers else None,
                        ms=3,
                        color=line.color,
                        linestyle="--" if line.dash else "-",
                        label=line.name,
                    )
                    if line.legend:
                        handles.setdefault(line.name, drawn)
                if panel.log_y:
                    ax.set_yscale("log")
                if names is not None:
                    ax.set_xticks(range(len(names)), names, rotation=90 if len(names) > 8 else 0)
                    _thin_ticks(ax, names)
                if panel.x_range:
                    ax.set_xlim(*panel.x_range)
                if panel.y_range:
                    ax.set_ylim(*panel.y_range)
                ax.set_title(panel.heading(), fontsize=PNG_TEXT_PT + 1)
                ax.set_xlabel(panel.x_title, fontsize=PNG_TEXT_PT)
                ax.set_ylabel(panel.y_title, fontsize=PNG_TEXT_PT)
                ax.tick_params(labelsize=PNG_TEXT_PT)
                ax.grid(alpha=0.3)
            if handles:
                axes[0].legend(list(handles.values()), list(handles), fontsize=PNG_TEXT_PT, frameon=False)
            chars = max(30, int(min(width * n, 16) * 72 / (0.62 * (PNG_TEXT_PT + 3))) - 4)
            fig.suptitle(textwrap.fill(self.title, chars), fontsize=PNG_TEXT_PT + 3)  # a long title on lines
        return fig


def _thin_ticks(ax, names: list[str]) -> None:
    """At most about 30 category labels on an axis (every k-th), so 9-point labels never overlap."""
    step = max(1, math.ceil(len(names) / 30))
    if step > 1:
        ax.set_xticks(range(0, len(names), step), names[::step], rotation=90)
