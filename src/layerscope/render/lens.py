"""One description of the logit lens figure (data and layout), drawn as an interactive plotly figure and as a PNG.

A :class:`LensFigure` holds, per (layer, prompt) cell, the probability of the prompt's target, the top-1 token and
whether it is the target; :meth:`LensFigure.plotly` and :meth:`LensFigure.png` derive both views from it, so the
HTML and the PNG show the same colours, tokens and outlined cells. Tokens are shown with
:func:`~layerscope.render.heatmap.visible_token`.

Example:
    >>> fig = LensFigure("logit lens", prob, top_tokens, ["5+2="], ["embed", "0", "1"], hits=hits)
    >>> fig.plotly().write_html("logit_lens.html"); fig.png().savefig("logit_lens.png")
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass

import numpy as np
import plotly.graph_objects as go
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from ..fonts import font_fallback
from .heatmap import CHAR_WIDTH, shorten, visible_token
from .line_figure import PNG_TEXT_PT
from .static import new_figure

TARGET_COLOR = "#d62728"
#: the widest prompt label under a PNG column, in average characters (the HTML shows it whole)
PNG_PROMPT_CHARS = 28


@dataclass
class LensFigure:
    """Rows = layers, columns = prompts.

    Attributes:
        title: the figure's title.
        prob: ``(L, P)`` probability of each prompt's target at each layer (the colour, 0 to 1).
        top_tokens: ``L`` rows of ``P`` top-1 tokens (the cells' text, as the model wrote them).
        prompts: the ``P`` column names; labels: the ``L`` layer names.
        hits: ``(L, P)`` bool, True where the top-1 token is the target (outlined); None: none marked.
        hover: ``L`` rows of ``P`` hover texts (the HTML only; None: the tokens).
    """

    title: str
    prob: np.ndarray
    top_tokens: list[list[str]]
    prompts: list[str]
    labels: list[str]
    hits: np.ndarray | None = None
    hover: list[list[str]] | None = None

    def shown_tokens(self) -> list[list[str]]:
        """The cells' text: each top-1 token made visible (spaces, newlines, control characters)."""
        return [[visible_token(t) for t in row] for row in self.top_tokens]

    def marked(self) -> list[tuple[int, int]]:
        """The ``(layer, prompt)`` cells whose top-1 token is the target, row by row."""
        if self.hits is None:
            return []
        return [(int(i), int(j)) for i, j in zip(*np.nonzero(self.hits))]

    def plotly(self) -> go.Figure:
        """Colour = p(target), text = top-1 token, outlined = top-1 is the target; hover: ``hover``."""
        shown = self.shown_tokens()
        fig = go.Figure(
            go.Heatmap(
                z=self.prob,
                x=self.prompts,
                y=self.labels,
                text=shown,
                texttemplate="%{text}",
                textfont=dict(size=10),
                colorscale="Blues",
                zmin=0,
                zmax=1,
                colorbar=dict(title=dict(text="p(target)", side="right")),
                customdata=self.hover if self.hover is not None else shown,
                hovertemplate="%{x}<br>layer %{y}<br>%{customdata}<extra></extra>",
            )
        )
        marked = self.marked()
        if marked:
            fig.add_trace(
                go.Scatter(
                    x=[self.prompts[j] for _, j in marked],
                    y=[self.labels[i] for i, _ in marked],
                    mode="markers",
                    marker=dict(symbol="square-open", size=26, color=TARGET_COLOR, line=dict(width=2)),
                    name="top-1 = target",
                    hoverinfo="skip",
                    showlegend=True,
                )
            )
            fig.update_layout(legend=dict(orientation="h", x=0, y=1.02, yanchor="bottom"))
        fig.update_layout(
            title=dict(text=self.title, x=0.5),
            template="plotly_white",
            height=max(420, 24 * len(self.labels) + 160),
            margin=dict(l=10, r=10, t=70, b=10),
        )
        fig.update_xaxes(type="category")
        fig.update_yaxes(type="category", autorange="reversed", title="layer")
        return fig

    def png(self) -> Figure:
        """The static figure: the same cells, tokens and outlines; text at least :data:`PNG_TEXT_PT` points,
        columns as wide as their longest token, prompts shortened to :data:`PNG_PROMPT_CHARS` characters."""
        pt = PNG_TEXT_PT
        shown = self.shown_tokens()
        longest = max((len(t) for row in shown for t in row), default=1)
        column = max(0.9, (longest + 2) * CHAR_WIDTH * pt / 72)  # inches
        width = min(column * len(self.prompts) + 3.0, 24.0)
        fig = new_figure(figsize=(width, 0.3 * len(self.labels) + 2.6), dpi=120, layout="constrained")
        with font_fallback(self):
            ax = fig.add_subplot()
            image = ax.imshow(self.prob, cmap="Blues", vmin=0, vmax=1, aspect="auto", interpolation="nearest")
            for i, j in self.marked():
                ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, edgecolor=TARGET_COLOR, linewidth=1.5))
            for i, row in enumerate(shown):
                for j, token in enumerate(row):
                    color = "black" if self.prob[i, j] < 0.6 else "white"
                    ax.text(j, i, token, ha="center", va="center", fontsize=pt, color=color)
            prompts = [shorten(p, PNG_PROMPT_CHARS) for p in self.prompts]
            ax.set_xticks(range(len(prompts)), prompts, rotation=30, ha="right")
            ax.set_yticks(range(len(self.labels)), self.labels)
            ax.tick_params(labelsize=pt)
            ax.set_ylabel("layer", fontsize=pt)
            chars = max(40, int(width * 72 / (CHAR_WIDTH * (pt + 1))) - 4)
            ax.set_title("\n".join(textwrap.wrap(self.title, chars)), fontsize=pt + 1)
            bar = fig.colorbar(image, ax=ax)
            bar.set_label("p(target)", fontsize=pt)
            bar.ax.tick_params(labelsize=pt)
        return fig
