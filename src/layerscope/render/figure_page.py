"""Several plotly figures on one self-contained HTML page (plotly.js inlined once: works offline)."""

from __future__ import annotations

import html


def figures_page(figures: list[tuple[str, object]], *, title: str) -> str:
    """HTML with a heading and each ``(caption, plotly figure)`` in order.

    Example:
        >>> page = figures_page([("layer.0", fig0), ("pooling", fig1)], title="Stages")
    """
    blocks = []
    for index, (caption, fig) in enumerate(figures):
        body = fig.to_html(full_html=False, include_plotlyjs=index == 0, config={"displaylogo": False})
        blocks.append(f'<section><h2 id="{html.escape(caption)}">{html.escape(caption)}</h2>{body}</section>')
    links = " · ".join(f'<a href="#{html.escape(c)}">{html.escape(c)}</a>' for c, _ in figures)
    return (
        f'<!doctype html><html><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        '<style>body{font-family:system-ui,sans-serif;margin:1.5em}</style></head><body>'
        f"<h1>{html.escape(title)}</h1><p>{links}</p>{''.join(blocks)}</body></html>\n"
    )
