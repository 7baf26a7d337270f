"""A self-contained HTML page for a checkpoint layout: collapsible groups, one row per tensor; the treemap."""

from __future__ import annotations

from ..checkpoints.tree import format_count, format_shape, node_label
from .html_shell import esc, html_page
from .people import bytes_text


def layout_page(data: dict, *, title: str | None = None) -> str:
    """HTML for the dict of :meth:`layerscope.experiments.layout.LayoutResult.to_dict`.

    Example:
        >>> page = layout_page(result.to_dict())
    """
    title = title or f"Layout of {data['source']}"
    totals = data["totals"]
    rows = "".join(
        f'<tr><td>{esc(dtype)}</td><td class="num">{esc(row["tensors"])}</td>'
        f'<td class="num">{esc(format_count(row["elements"]))}</td><td class="num">{esc(format_count(row["bytes"]))}</td></tr>'
        for dtype, row in totals["by_dtype"].items()
    )
    files = ", ".join(map(str, data["files"]))
    body = f"""<section id="totals">
<h2>Totals</h2>
<p class="muted">{esc(data["format"])}: {esc(files)}</p>
<p><b>{esc(format_count(totals["parameters"]))}</b> parameters in {esc(totals["tensors"])} tensors,
{esc(format_count(totals["bytes"]))} bytes</p>
<table class="data"><tr><th>dtype</th><th class="num">tensors</th><th class="num">elements</th><th class="num">bytes</th></tr>{rows}</table>
{_memory_table(data.get("forward_memory") or {})}
</section>
<section id="tensors">
<h2>Tensors</h2>
<div class="tree">{_nodes(data["tree"])}</div>
</section>"""
    return html_page(title, body, subtitle="read from the checkpoint's headers; no weights loaded")


def _memory_table(memory: dict) -> str:
    """What a forward needs per dtype (weights, buffers, total), or nothing without an estimate."""
    if not memory:
        return ""
    first = next(iter(memory.values()))
    rows = "".join(
        f'<tr><td>{esc(dtype)}</td><td class="num">{esc(bytes_text(m["weights"]))}</td>'
        f'<td class="num">{esc(bytes_text(m["buffers"]))}</td><td class="num"><b>{esc(bytes_text(m["total"]))}</b></td></tr>'
        for dtype, m in memory.items()
    )
    return (
        f"<p>A forward of {esc(first['batch'])} x {esc(first['seq_len'])} tokens with every layer captured needs:</p>"
        '<table class="data"><tr><th>dtype</th><th class="num">weights</th><th class="num">buffers</th>'
        f'<th class="num">total</th></tr>{rows}</table>'
    )


def _nodes(nodes: list[dict]) -> str:
    return "".join(_node(node) for node in nodes)


def _node(node: dict) -> str:
    if "children" in node:
        return f"<details><summary>{esc(node_label(node))}</summary>{_nodes(node['children'])}</details>"
    if "same_as" in node:
        return f'<div class="f">{esc(node_label(node))}</div>'
    quant = f' <span class="q">{esc(node["quant"])}</span>' if node.get("quant") else ""
    return (
        f'<div class="t">{esc(node["name"])}{quant} {esc(format_shape(node["shape"]))} '
        f'<span class="d">{esc(node["dtype"])}</span></div>'
    )
