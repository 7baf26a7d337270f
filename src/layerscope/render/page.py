"""One self-contained HTML page: plotly.js inlined once, a section per run, a table of contents."""

from __future__ import annotations

import base64
import html
from pathlib import Path

from ..atomic import write_text

_STYLE = """
body { font-family: -apple-system, 'Segoe UI', Roboto, Helvetica, Arial, sans-serif; margin: 0; color: #222; background: #fafafa; }
header { background: #1f2a44; color: white; padding: 18px 32px; }
header h1 { margin: 0; font-size: 24px; } header p { margin: 4px 0 0; opacity: 0.8; }
nav { padding: 10px 32px; background: white; border-bottom: 1px solid #ddd; position: sticky; top: 0; z-index: 5; }
nav a { margin-right: 16px; color: #1f5fbf; text-decoration: none; font-size: 14px; }
section { background: white; margin: 18px 32px; padding: 16px 24px; border-radius: 6px; box-shadow: 0 1px 3px rgba(0,0,0,0.08); }
section h2 { margin-top: 4px; }
pre.command { background: #f3f3f3; padding: 8px 12px; border-radius: 4px; overflow-x: auto; font-size: 13px; }
dl.numbers { display: grid; grid-template-columns: max-content 1fr; gap: 2px 16px; font-size: 13px; }
dl.numbers dt { font-weight: 600; color: #555; } dl.numbers dd { margin: 0; font-family: monospace; word-break: break-word; }
.figure { margin: 12px 0; border: 1px solid #eee; border-radius: 4px; }
details { margin: 8px 0; } summary { cursor: pointer; font-weight: 600; color: #333; }
table.data { border-collapse: collapse; font-size: 12px; margin: 6px 0; }
table.data th, table.data td { border-bottom: 1px solid #eee; padding: 3px 8px; text-align: left; }
table.data th { background: #f5f5f5; }
img.static { max-width: 100%; }
pre.text { font-size: 12px; max-height: 480px; overflow: auto; background: #f8f8f8; padding: 8px; }
"""


def _figure_div(section_index: int, stem: str, spec: str) -> str:
    div_id = f"fig-{section_index}-{stem}"
    # '<' only occurs inside JSON strings: escaping every one keeps "</script>" and "<!--" from ending the element.
    safe_spec = spec.replace("<", "\\u003c")
    return (
        f'<div class="figure" id="{div_id}" data-figure="{html.escape(stem)}"></div>\n'
        f'<script type="application/json" id="{div_id}-spec">{safe_spec}</script>'
    )


def _section_html(index: int, section, base_dir: Path) -> str:
    parts = [f'<section id="run-{index}" data-experiment="{html.escape(section.experiment)}">']
    parts.append(f"<h2>{html.escape(section.title)}</h2>")
    parts.append(f'<pre class="command">{html.escape(section.command)}</pre>')
    for stem, spec in section.figures:
        parts.append(_figure_div(index, stem, spec))
    for name in section.images:
        data = base64.b64encode((base_dir / name).read_bytes()).decode()
        parts.append(f'<img class="static" alt="{html.escape(name)}" src="data:image/png;base64,{data}">')
    if section.numbers:
        parts.append('<dl class="numbers">')
        for key, value in section.numbers.items():
            parts.append(f"<dt>{html.escape(key)}</dt><dd>{html.escape(value)}</dd>")
        parts.append("</dl>")
    for name, text in section.texts:
        parts.append(f'<details><summary>{html.escape(name)}</summary><pre class="text">{html.escape(text)}</pre></details>')
    for name, table, total in section.tables:
        shown = f"first {min(total, 25)} of {total} rows" if total > 25 else f"{total} rows"
        parts.append(f"<details><summary>{html.escape(name)} ({shown})</summary>{table}</details>")
    parts.append("</section>")
    return "\n".join(parts)


_SCRIPT = """
document.querySelectorAll('div.figure').forEach(function (div) {
  var spec = JSON.parse(document.getElementById(div.id + '-spec').textContent);
  var config = {displaylogo: false, responsive: true};
  Plotly.newPlot(div, {data: spec.data, layout: spec.layout, frames: spec.frames || [], config: config});
});
"""


def render_page(sections, out: Path, title: str, base_dirs: list[Path]) -> Path:
    """Write the page to ``out`` (atomically) and return ``out``."""
    from plotly.offline import get_plotlyjs

    nav = " ".join(f'<a href="#run-{i}">{html.escape(s.experiment)}</a>' for i, s in enumerate(sections))
    body = "\n".join(_section_html(i, s, d) for i, (s, d) in enumerate(zip(sections, base_dirs)))
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>{_STYLE}</style>
<script>{get_plotlyjs()}</script>
</head><body>
<header><h1>{html.escape(title)}</h1><p>{len(sections)} runs; every figure is interactive and works offline.</p></header>
<nav>{nav}</nav>
{body}
<script>{_SCRIPT}</script>
</body></html>
"""
    write_text(out, page)
    return out
