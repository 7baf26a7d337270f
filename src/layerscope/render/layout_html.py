"""A self-contained HTML page for a checkpoint layout: collapsible groups, one row per tensor."""

from __future__ import annotations

import html

from ..checkpoints.tree import format_count, format_shape, node_label


def layout_page(data: dict, *, title: str | None = None) -> str:
    """HTML for the dict of :meth:`layerscope.experiments.layout.LayoutReport.to_dict`.

    Example:
        >>> page = layout_page(report.to_dict())
    """
    title = title or f"Layout of {data['source']}"
    totals = data["totals"]
    rows = "".join(
        f"<tr><td>{html.escape(dtype)}</td><td>{row['tensors']}</td><td>{format_count(row['elements'])}</td>"
        f"<td>{format_count(row['bytes'])}</td></tr>"
        for dtype, row in totals["by_dtype"].items()
    )
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; }}
details {{ margin-left: 1.2em; }} summary {{ cursor: pointer; font-weight: 600; }}
.t {{ margin-left: 1.2em; font-family: ui-monospace, monospace; }} .d {{ color: #777; }} .q {{ color: #a05000; }}
.f {{ margin-left: 1.2em; color: #777; font-style: italic; }}
table {{ border-collapse: collapse; }} td, th {{ padding: 0.2em 0.8em; border-bottom: 1px solid #ddd; text-align: right; }}
</style></head><body>
<h1>{html.escape(title)}</h1>
<p>{html.escape(data['format'])}: {html.escape(', '.join(data['files']))}</p>
<p><b>{format_count(totals['parameters'])}</b> parameters in {totals['tensors']} tensors,
{format_count(totals['bytes'])} bytes</p>
<table><tr><th>dtype</th><th>tensors</th><th>elements</th><th>bytes</th></tr>{rows}</table>
<h2>Tensors</h2>
{_nodes(data['tree'])}
</body></html>
"""


def _nodes(nodes: list[dict]) -> str:
    return "".join(_node(node) for node in nodes)


def _node(node: dict) -> str:
    if "children" in node:
        return f"<details><summary>{html.escape(node_label(node))}</summary>{_nodes(node['children'])}</details>"
    if "same_as" in node:
        return f'<div class="f">{html.escape(node_label(node))}</div>'
    quant = f' <span class="q">{html.escape(node["quant"])}</span>' if node["quant"] else ""
    return (
        f'<div class="t">{html.escape(node["name"])}{quant} {html.escape(format_shape(node["shape"]))} '
        f'<span class="d">{html.escape(node["dtype"])}</span></div>'
    )


def parameter_treemap(ids: list[str], labels: list[str], parents: list[str], values: list[int], title: str):
    """A plotly treemap of parameter counts; ``values`` already summed over each node's children."""
    import plotly.graph_objects as go

    fig = go.Figure(
        go.Treemap(
            ids=ids, labels=labels, parents=parents, values=values, branchvalues="total",
            hovertemplate="%{id}<br>%{value:,} parameters<br>%{percentRoot:.1%} of all<extra></extra>",
            maxdepth=3,
        )
    )
    fig.update_layout(title=dict(text=title, x=0.5), margin=dict(l=10, r=10, t=50, b=10), height=520)
    return fig
