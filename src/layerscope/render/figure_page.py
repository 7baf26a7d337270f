"""Several plotly figures on one self-contained HTML page (plotly.js inlined once: works offline)."""

from __future__ import annotations

from .html_shell import esc, html_page


def figures_page(figures: list[tuple[str, object]], *, title: str) -> str:
    """A page with each ``(caption, plotly figure)`` in its own section, in order, and a table of contents.

    Example:
        >>> page = figures_page([("embed", fig0), ("pooling", fig1)], title="Stages")
    """
    blocks = []
    for index, (caption, fig) in enumerate(figures):
        body = fig.to_html(full_html=False, include_plotlyjs=index == 0, config={"displaylogo": False})
        blocks.append(f'<section id="figure-{index}"><h2>{esc(caption)}</h2>{body}</section>')
    nav = [(f"figure-{index}", caption) for index, (caption, _) in enumerate(figures)]
    return html_page(title, "\n".join(blocks), nav=nav)
