"""Residual heatmaps across layers (seed 001): one description, :class:`ResidualFigure`, drawn as plotly and PNG.

Inputs are ready-made arrays; colour ranges are passed in, nothing is computed here. Rows are labelled
with layer names (``embed``, ``0``..``n-1``, ``norm``; see :mod:`layerscope.capture.layer_spec`).
:meth:`ResidualFigure.plotly` returns a plotly figure, :meth:`ResidualFigure.png` a
:class:`matplotlib.figure.Figure` (no pyplot), which the run directory writes as PNG; both read the same panels.

Residual heatmaps scale with the number of prompts: one prompt is drawn large with a numbered mean/RMS
strip; up to :data:`MAX_PANELS` side by side on one colour scale, titles shortened to fit a
:data:`LAYOUT_WIDTH_PX`-wide figure; more are shown one at a time with a dropdown (HTML), or the first
:data:`MAX_PANELS` with a caption counting the rest (PNG).
"""

from __future__ import annotations

import html
import unicodedata
from dataclasses import dataclass

import numpy as np
import plotly.graph_objects as go
from matplotlib.figure import Figure

from .line_figure import PNG_TEXT_PT
from .static import new_figure


@dataclass(frozen=True)
class ResidualPanel:
    """One prompt's residual at one position in every layer.

    Attributes:
        title: a short name shown above the panel, e.g. ``'5+2='`` (shortened further where space is short).
        values: ``(L, d_model)`` the residual vectors, one row per layer (as drawn).
        mean: ``(L,)`` per-layer mean; rms: ``(L,)`` per-layer root mean square.
        detail: more about the panel for hover text, e.g. ``'position 4, token "="'``.
    """

    title: str
    values: np.ndarray
    mean: np.ndarray
    rms: np.ndarray
    detail: str = ""


MAX_PANELS = 6
"""Prompts drawn side by side; with more, the HTML figure shows one prompt at a time with a selector and the
PNG the first ``MAX_PANELS`` with a caption."""

LAYOUT_WIDTH_PX = 760
"""The narrowest width the plotly figure is laid out for: panel titles are shortened to fit it."""

TITLE_FONT = 11
CHAR_WIDTH = 0.62  # an average character's width, in font sizes (Helvetica/Arial-like fonts)
_MARGIN = dict(l=60, r=20)


def _char_width(char: str) -> float:
    # CJK and emoji take about one em, other characters CHAR_WIDTH of one
    return 1 / CHAR_WIDTH if unicodedata.east_asian_width(char) in ("W", "F") else 1.0


def shorten(text: str, chars: int) -> str:
    """``text`` cut to the width of at most ``chars`` average characters (wide CJK and emoji characters count
    about 1.6), ``…`` marking a cut."""
    chars = max(chars, 2)
    if sum(map(_char_width, text)) <= chars:
        return text
    used, kept = 1.0, ""  # the "…" takes one
    for char in text:
        used += _char_width(char)
        if used > chars:
            break
        kept += char
    return kept.rstrip() + "…"


def _title_chars(fraction: float) -> int:
    """How many title characters fit in ``fraction`` of the plot area at :data:`LAYOUT_WIDTH_PX`."""
    pixels = fraction * (LAYOUT_WIDTH_PX - _MARGIN["l"] - _MARGIN["r"])
    return int(pixels / (CHAR_WIDTH * TITLE_FONT))


def _strip_max(panels: list[ResidualPanel]) -> float:
    return max(float(np.max(np.abs(np.stack([p.mean, p.rms])))) for p in panels) or 1.0


def _number(value: float) -> str:
    """Three significant digits, without exponents for values up to 10⁶ (``1230``, not ``1.23e+03``)."""
    return f"{value:.0f}" if 1e3 <= abs(value) < 1e6 else f"{value:.3g}"


def _strip_text(panel: ResidualPanel) -> list[list[str]]:
    return [[_number(m), _number(r)] for m, r in zip(panel.mean, panel.rms)]


def _plotly_text(text: str) -> str:
    # plotly reads a subset of HTML in labels: "<" and "&" in a prompt must stay text
    return html.escape(text, quote=False)


def _heat_trace(panel: ResidualPanel, layer_names: list[str], axis: int, visible: bool = True) -> go.Heatmap:
    return go.Heatmap(
        z=panel.values,
        y=layer_names,
        coloraxis="coloraxis",
        name=_plotly_text(" ".join(filter(None, [panel.title, panel.detail and f"({panel.detail})"]))),
        hovertemplate="layer %{y}<br>dim %{x}<br>value %{z:.4g}<extra>%{fullData.name}</extra>",
        xaxis=f"x{axis}",
        yaxis=f"y{axis}",
        visible=visible,
    )


def _strip_trace(panel: ResidualPanel, layer_names: list[str], axis: int, numbers: bool, visible=True) -> go.Heatmap:
    return go.Heatmap(
        z=np.stack([panel.mean, panel.rms], axis=1),
        x=["mean", "rms"],
        y=layer_names,
        coloraxis="coloraxis2",
        name=_plotly_text(panel.title),
        text=_strip_text(panel) if numbers else None,
        texttemplate="%{text}" if numbers else None,
        textfont=dict(size=9),
        hovertemplate="layer %{y}<br>%{x}: %{z:.4g}<extra>%{fullData.name}</extra>",
        xaxis=f"x{axis}",
        yaxis=f"y{axis}",
        visible=visible,
    )


def _colorbar(title: str, x: float) -> dict:
    return dict(title=dict(text=title, side="right"), x=x, xanchor="left", thickness=12, len=0.9, y=0.5)


@dataclass
class ResidualFigure:
    """One description of the residual heatmaps of ``inspect``, drawn as plotly and as PNG from the same panels,
    layer names and colour range (see the module).

    Attributes:
        panels: one :class:`ResidualPanel` per prompt, every ``values`` ``(L, d_model)``.
        layer_names: the ``L`` row names.
        zmax: the heatmaps' colour range ``[-zmax, zmax]`` (the strips get their own, symmetric about 0).
        title: the figure's title; value_label: the heatmaps' colour bar title.
        max_panels: the most prompts side by side (the HTML shows more one at a time, the PNG the first ones).
        html_name: the HTML figure's file, named in the PNG's caption when prompts are left out.
    """

    panels: list[ResidualPanel]
    layer_names: list[str]
    zmax: float
    title: str
    value_label: str = "value"
    max_panels: int = MAX_PANELS
    html_name: str = ""

    def strip_max(self) -> float:
        """The strips' colour range ``[-strip_max, strip_max]``."""
        return _strip_max(self.panels)

    def shown_in_png(self) -> list[ResidualPanel]:
        """The panels the PNG draws: the first ``max_panels``."""
        return self.panels[: self.max_panels]

    def plotly(self) -> go.Figure:
        """Residual heatmaps (rows = layers, columns = dimensions), each with a narrow mean/RMS strip beside it.

        One prompt: the heatmap, its colour bar, then the strip with its numbers and its own colour bar.
        Up to ``max_panels`` prompts: small multiples side by side, titles shortened to fit, "dimension" once.
        More: one prompt at a time, chosen from a dropdown (every prompt's traces are in the figure; the
        dropdown switches which are visible). All heatmaps share one diverging colour scale ``[-zmax, zmax]``
        (``value_label`` names it); all strips share another, symmetric about 0.
        """
        if not self.panels:
            raise ValueError("no panels to draw")
        strip_max = _strip_max(self.panels)
        n = len(self.panels)
        fig = go.Figure()
        layout: dict = dict(
            # the title sits above the panel titles or the selector and below the mode bar's row of buttons
            title=dict(
                text=_plotly_text(self.title),
                x=0.5,
                xanchor="center",
                yref="paper",
                y=1,
                yanchor="bottom",
                pad=dict(b=48),
                font=dict(size=15),
            ),
            template="plotly_white",
            height=max(440, 22 * len(self.layer_names) + 190),
            margin=dict(**_MARGIN, t=120, b=70),
        )
        y_common = dict(type="category", autorange="reversed", showgrid=False)
        if n == 1 or n > self.max_panels:  # the one-prompt view
            heat_end, strip = 0.67, (0.81, 0.92)
            layout["coloraxis"] = dict(
                colorscale="RdBu_r",
                cmin=-self.zmax,
                cmax=self.zmax,
                colorbar=_colorbar(self.value_label, heat_end + 0.01),
            )
            layout["coloraxis2"] = dict(
                colorscale="RdBu_r", cmin=-strip_max, cmax=strip_max, colorbar=_colorbar("mean, rms", strip[1] + 0.012)
            )
            for index, panel in enumerate(self.panels):
                fig.add_trace(_heat_trace(panel, self.layer_names, 1, visible=index == 0))
                fig.add_trace(_strip_trace(panel, self.layer_names, 2, numbers=True, visible=index == 0))
            layout["xaxis"] = dict(domain=[0, heat_end], title=dict(text="dimension"), showgrid=False)
            layout["yaxis"] = dict(**y_common, title=dict(text="layer"))
            layout["xaxis2"] = dict(domain=list(strip), side="bottom", showgrid=False, anchor="y2")
            layout["yaxis2"] = dict(**y_common, matches="y", showticklabels=False, anchor="x2")
            if n == 1:
                text = shorten(self.panels[0].title, _title_chars(heat_end))
                layout["annotations"] = [_panel_title(text, heat_end / 2)]
            else:
                buttons = []
                for index, panel in enumerate(self.panels):
                    visible = [i // 2 == index for i in range(2 * n)]
                    label = _plotly_text(shorten(f"{index + 1}/{n}  {panel.title}", 32))
                    buttons.append(dict(label=label, method="restyle", args=[{"visible": visible}]))
                layout["updatemenus"] = [
                    dict(
                        type="dropdown",
                        buttons=buttons,
                        active=0,
                        x=0,
                        xanchor="left",
                        y=1.01,
                        yanchor="bottom",
                        showactive=True,
                        pad=dict(t=0, b=0, l=0, r=0),
                    )
                ]
        else:  # small multiples
            right = 0.78
            gap = min(0.025, 0.2 * right / n)  # many panels (a large max_panels): every width shrinks, none below 0
            group = (right - (n - 1) * gap) / n
            strip_gap, strip_width = min(0.006, 0.05 * group), min(0.045, 0.3 * group)
            chars = _title_chars(group)
            ticks = _few_ticks(self.panels[0].values.shape[1])
            annotations = []
            for index, panel in enumerate(self.panels):
                start = index * (group + gap)
                heat = [start, start + group - strip_width - strip_gap]
                heat_axis, strip_axis = 2 * index + 1, 2 * index + 2
                fig.add_trace(_heat_trace(panel, self.layer_names, heat_axis))
                fig.add_trace(_strip_trace(panel, self.layer_names, strip_axis, numbers=False))
                suffix_h = "" if heat_axis == 1 else str(heat_axis)
                suffix_s = str(strip_axis)
                layout[f"xaxis{suffix_h}"] = dict(
                    domain=heat,
                    anchor=f"y{suffix_h}",
                    showgrid=False,
                    tickvals=ticks,
                    tickangle=0,
                    tickfont=dict(size=10),
                )
                layout[f"yaxis{suffix_h}"] = dict(
                    **y_common,
                    anchor=f"x{suffix_h}",
                    **({"title": dict(text="layer")} if index == 0 else {"matches": "y", "showticklabels": False}),
                )
                layout[f"xaxis{suffix_s}"] = dict(
                    domain=[heat[1] + strip_gap, start + group],
                    anchor=f"y{suffix_s}",
                    tickangle=-90,
                    tickfont=dict(size=8),
                    showgrid=False,
                )
                layout[f"yaxis{suffix_s}"] = dict(**y_common, anchor=f"x{suffix_s}", matches="y", showticklabels=False)
                annotations.append(_panel_title(shorten(panel.title, chars), start + group / 2))
            annotations.append(
                dict(
                    text="dimension",
                    x=(right - strip_width) / 2,
                    xanchor="center",
                    y=0,
                    yanchor="top",
                    yshift=-38,
                    xref="paper",
                    yref="paper",
                    showarrow=False,
                    font=dict(size=13),
                )
            )
            layout["annotations"] = annotations
            layout["coloraxis"] = dict(
                colorscale="RdBu_r", cmin=-self.zmax, cmax=self.zmax, colorbar=_colorbar(self.value_label, 0.805)
            )
            layout["coloraxis2"] = dict(
                colorscale="RdBu_r", cmin=-strip_max, cmax=strip_max, colorbar=_colorbar("strips: mean, rms", 0.91)
            )
        fig.update_layout(**layout)
        return fig

    def png(self) -> Figure:
        """The static figure: one prompt with its numbered strip, or the first ``max_panels`` side by side with a
        caption saying how many more prompts the HTML figure (``html_name``) shows; text at least
        :data:`~layerscope.render.line_figure.PNG_TEXT_PT` points."""
        if not self.panels:
            raise ValueError("no panels to draw")
        strip_max = self.strip_max()
        shown = self.shown_in_png()
        k = len(shown)
        pt = PNG_TEXT_PT
        height = 0.26 * len(self.layer_names) + 2.4
        cmap = "RdBu_r"
        if k == 1:
            width = 10.0
            fig = new_figure(figsize=(width, height), dpi=120, layout="constrained")
            axes = fig.subplots(1, 4, gridspec_kw={"width_ratios": [20, 0.5, 4.2, 0.5]})
            heat_ax, bar_ax, strip_ax, strip_bar_ax = axes
            panel = shown[0]
            image = heat_ax.imshow(
                panel.values, aspect="auto", cmap=cmap, vmin=-self.zmax, vmax=self.zmax, interpolation="nearest"
            )
            heat_ax.set_yticks(range(len(self.layer_names)), self.layer_names)
            heat_ax.set_ylabel("layer", fontsize=pt)
            heat_ax.set_xlabel("dimension", fontsize=pt)
            heat_ax.set_title(_png_text(shorten(panel.title, 80)), fontsize=pt + 1)
            fig.colorbar(image, cax=bar_ax).set_label(self.value_label, fontsize=pt)
            strip = np.stack([panel.mean, panel.rms], 1)
            strip_image = strip_ax.imshow(strip, aspect="auto", cmap=cmap, vmin=-strip_max, vmax=strip_max)
            for i, row in enumerate(_strip_text(panel)):
                for j, text in enumerate(row):
                    dark = abs(strip[i, j]) > 0.6 * strip_max
                    strip_ax.text(j, i, text, ha="center", va="center", fontsize=pt, color="white" if dark else "black")
            strip_ax.set_xticks([0, 1], ["mean", "rms"])
            strip_ax.set_yticks([])
            fig.colorbar(strip_image, cax=strip_bar_ax).set_label("mean, rms", fontsize=pt)
        else:
            width = min(2.9 * k + 2.4, 20.0)
            fig = new_figure(figsize=(width, height), dpi=120, layout="constrained")
            axes = fig.subplots(1, 2 * k + 2, gridspec_kw={"width_ratios": [8, 1] * k + [0.35, 0.35]})
            group_inches = width * 9 / (9 * k + 0.7) - 0.3
            chars = int(group_inches * 72 / (CHAR_WIDTH * pt))
            image = strip_image = None
            for index, panel in enumerate(shown):
                heat_ax, strip_ax = axes[2 * index], axes[2 * index + 1]
                image = heat_ax.imshow(
                    panel.values, aspect="auto", cmap=cmap, vmin=-self.zmax, vmax=self.zmax, interpolation="nearest"
                )
                if index == 0:
                    heat_ax.set_yticks(range(len(self.layer_names)), self.layer_names)
                    heat_ax.set_ylabel("layer", fontsize=pt)
                else:
                    heat_ax.set_yticks([])
                heat_ax.set_xticks(_few_ticks(panel.values.shape[1]))
                heat_ax.set_title(_png_text(shorten(panel.title, chars)), fontsize=pt)
                strip_image = strip_ax.imshow(
                    np.stack([panel.mean, panel.rms], 1), aspect="auto", cmap=cmap, vmin=-strip_max, vmax=strip_max
                )
                strip_ax.set_xticks([0, 1], ["mean", "rms"], rotation=90)
                strip_ax.set_yticks([])
            fig.colorbar(image, cax=axes[-2]).set_label(self.value_label, fontsize=pt)
            fig.colorbar(strip_image, cax=axes[-1]).set_label("strips: mean, rms", fontsize=pt)
            fig.supxlabel("dimension", fontsize=pt)
        for ax in fig.axes:
            ax.tick_params(labelsize=pt)
        more = len(self.panels) - k
        if more:
            where = f"the HTML figure ({self.html_name})" if self.html_name else "the HTML figure"
            caption = f"{more} more prompt{'s' if more != 1 else ''} in {where}, one at a time with a prompt selector"
            bottom = 0.3 / height  # room for one line of text, in figure heights
            fig.get_layout_engine().set(rect=(0, bottom, 1, 1 - bottom))
            if fig.get_supxlabel():
                fig.supxlabel("dimension", fontsize=pt, y=bottom, va="bottom")
            fig.text(0.5, 0.01, _png_text(caption), ha="center", va="bottom", fontsize=pt, color="#444")
        fig.suptitle(_png_text(self.title), fontsize=pt + 2)
        return fig


def residual_figure(
    panels: list[ResidualPanel],
    layer_names: list[str],
    zmax: float,
    title: str,
    *,
    value_label: str = "value",
    max_panels: int = MAX_PANELS,
) -> go.Figure:
    """:class:`ResidualFigure`, interactive."""
    return ResidualFigure(panels, layer_names, zmax, title, value_label=value_label, max_panels=max_panels).plotly()


def _few_ticks(width: int) -> list[int]:
    """0 and at most two round multiples below ``width``: dimension ticks that fit a narrow panel unrotated."""
    step = 1
    while -(-width // step) > 3:  # more than three ticks 0, step, 2 step, ... below width
        step = step * 5 // 2 if str(step)[0] == "2" else step * 2  # 1, 2, 5, 10, 20, 50, ...
    return list(range(0, width, step))


def _panel_title(text: str, x: float) -> dict:
    return dict(
        text=_plotly_text(text),
        x=x,
        xanchor="center",
        y=1.0,
        yanchor="bottom",
        yshift=4,
        xref="paper",
        yref="paper",
        showarrow=False,
        font=dict(size=TITLE_FONT),
    )


def _png_text(text: str) -> str:
    return text.replace("$", r"\$")  # a "$" would start mathtext


def residual_png(
    panels: list[ResidualPanel],
    layer_names: list[str],
    zmax: float,
    title: str,
    *,
    value_label: str = "value",
    max_panels: int = MAX_PANELS,
    html_name: str = "",
) -> Figure:
    """:class:`ResidualFigure` as a PNG."""
    return ResidualFigure(panels, layer_names, zmax, title, value_label, max_panels, html_name).png()


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
