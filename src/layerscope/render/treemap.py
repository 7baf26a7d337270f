"""One description of a parameter treemap (nodes in order, each with its total), drawn as plotly and as PNG.

The interactive view is plotly's treemap (click to zoom); the PNG lays the first two levels below the root
out by slice and dice: the top-level parts as columns, each split into rows for its children, all in the
order given (block 2 before block 10), areas proportional to the parameter counts.

Example:
    >>> tree = Treemap("parameters", ["model", "model.embed", "model.layers"], ["model", "embed", "layers"],
    ...                ["", "model", "model"], [300, 100, 200])
    >>> tree.plotly().write_html("treemap.html"); tree.png().savefig("treemap.png")
"""

from __future__ import annotations

from dataclasses import dataclass

from ..fonts import font_fallback
from .line_figure import PNG_TEXT_PT
from .palette import PALETTE

_HEADER = 0.045  # of the height, above a column's boxes, for its label


@dataclass
class Treemap:
    """``ids`` (dotted names, each parent before its children), ``labels``, ``parents`` (``""`` for a top
    node) and ``values`` (parameters, summed over each node's children), one entry per node, in order."""

    title: str
    ids: list[str]
    labels: list[str]
    parents: list[str]
    values: list[int]

    def children(self, parent: str) -> list[int]:
        """Indices of the nodes under ``parent`` (``""``: the top nodes), in order."""
        return [i for i, p in enumerate(self.parents) if p == parent]

    def plotly(self):
        """plotly's treemap, sorted as given (not by size)."""
        import plotly.graph_objects as go

        fig = go.Figure(
            go.Treemap(
                ids=self.ids,
                labels=self.labels,
                parents=self.parents,
                values=self.values,
                branchvalues="total",
                sort=False,
                hovertemplate="%{id}<br>%{value:,} parameters<br>%{percentRoot:.1%} of all<extra></extra>",
                maxdepth=3,
            )
        )
        fig.update_layout(title=dict(text=self.title, x=0.5), margin=dict(l=10, r=10, t=50, b=10), height=520)
        return fig

    def boxes(self) -> list[tuple[int, float, float, float, float, bool]]:
        """``(node index, x, y, width, height, column)`` in a unit square (``column``: a box with boxes inside): below a single root, its children as columns
        (else the top nodes), each column split top to bottom into its own children."""
        top = self.children("")
        if len(top) == 1 and self.children(self.ids[top[0]]):
            top = self.children(self.ids[top[0]])
        total = sum(self.values[i] for i in top) or 1
        boxes, x = [], 0.0
        for i in top:
            width = self.values[i] / total
            inner = self.children(self.ids[i])
            boxes.append((i, x, 0.0, width, 1.0, bool(inner)))
            inner_total = sum(self.values[j] for j in inner) or 1
            y = _HEADER  # room for the column's own label
            for j in inner:
                height = (1 - _HEADER) * self.values[j] / inner_total
                boxes.append((j, x, y, width, height, False))
                y += height
            x += width
        return boxes

    def png(self):
        """The static figure (matplotlib ``Figure``): boxes in order, labelled where they are large enough."""
        from matplotlib.patches import Rectangle

        from .static import new_figure

        fig = new_figure(figsize=(11, 6), dpi=110, layout="constrained")
        with font_fallback(self):
            ax = fig.add_subplot()
            columns = 0
            for index, x, y, width, height, outer in self.boxes():
                columns += y == 0.0 and (outer or self.parents[index] in ("", self.ids[0]))
                color = PALETTE[(columns - 1) % len(PALETTE)]
                ax.add_patch(
                    Rectangle(
                        (x, 1 - y - height),
                        width,
                        height,
                        facecolor=color,
                        alpha=0.35 if outer else 0.75,
                        edgecolor="white",
                        linewidth=2 if outer else 0.8,
                    )
                )
                if not outer and width > 0.045 and height > 0.035:
                    ax.text(
                        x + width / 2,
                        1 - y - height / 2,
                        f"{self.labels[index]}\n{self.values[index]:,}",
                        ha="center",
                        va="center",
                        fontsize=PNG_TEXT_PT,
                        clip_on=True,
                    )
                elif outer and width > 0.03:
                    ax.text(x + 0.004, 0.995, self.labels[index], ha="left", va="top", fontsize=PNG_TEXT_PT)
            ax.set_xlim(0, 1)
            ax.set_ylim(0, 1)
            ax.axis("off")
            fig.suptitle(self.title, fontsize=PNG_TEXT_PT + 3)
        return fig
