"""The report page: plotly.js inlined once, a section per run, a table of contents (works offline)."""

from __future__ import annotations

import base64
from pathlib import Path

from .html_shell import esc, html_page


def _figure_div(section_index: int, figure_index: int, stem: str, spec: str) -> str:
    div_id = f"fig-{section_index}-{figure_index}"
    # '<' only occurs inside JSON strings: escaping every one keeps "</script>" and "<!--" from ending the element.
    safe_spec = spec.replace("<", "\\u003c")
    return (
        f'<div class="figure" id="{div_id}" data-figure="{esc(stem)}"></div>\n'
        f'<script type="application/json" id="{div_id}-spec">{safe_spec}</script>'
    )


def _section_html(index: int, section, base_dir: Path) -> str:
    parts = [f'<section id="run-{index}" data-experiment="{esc(section.experiment)}">']
    parts.append(f"<h2>{esc(section.title)}</h2>")
    parts.append(f'<pre class="command">{esc(section.command)}</pre>')
    for k, (stem, spec) in enumerate(section.figures):
        parts.append(_figure_div(index, k, stem, spec))
    for name in section.images:
        data = base64.b64encode((base_dir / name).read_bytes()).decode()
        parts.append(f'<img class="static" alt="{esc(name)}" src="data:image/png;base64,{data}">')
    if section.numbers:
        parts.append('<dl class="numbers">')
        for key, value in section.numbers.items():
            parts.append(f"<dt>{esc(key)}</dt><dd>{esc(value)}</dd>")
        parts.append("</dl>")
    for name, text in section.texts:
        parts.append(f'<details><summary>{esc(name)}</summary><pre class="text">{esc(text)}</pre></details>')
    for name, table, total in section.tables:  # tables: pandas HTML, cells escaped by pandas
        shown = f"first {min(total, 25)} of {total} rows" if total > 25 else f"{total} rows"
        parts.append(f"<details><summary>{esc(name)} ({esc(shown)})</summary>{table}</details>")
    parts.append("</section>")
    return "\n".join(parts)


_SCRIPT = """
document.querySelectorAll('div.figure').forEach(function (div) {
  var spec = JSON.parse(document.getElementById(div.id + '-spec').textContent);
  var config = {displaylogo: false, responsive: true};
  Plotly.newPlot(div, {data: spec.data, layout: spec.layout, frames: spec.frames || [], config: config});
});
"""


def report_html(sections, title: str, base_dirs: list[Path]) -> str:
    """The whole report page for ``sections`` (see :class:`layerscope.experiments.report.Section`)."""
    from plotly.offline import get_plotlyjs

    nav = [(f"run-{i}", s.experiment) for i, s in enumerate(sections)]
    body = "\n".join(_section_html(i, s, d) for i, (s, d) in enumerate(zip(sections, base_dirs)))
    runs = f"{len(sections)} run{'s' if len(sections) != 1 else ''}"
    return html_page(
        title,
        f"{body}\n<script>{_SCRIPT}</script>",
        subtitle=f"{runs}; every figure is interactive and works offline.",
        nav=nav,
        head=f"<script>{get_plotlyjs()}</script>\n",
    )


def render_page(sections, out: Path, title: str, base_dirs: list[Path]) -> Path:
    """Write the report page to ``out`` (atomically) and return ``out``."""
    from ..atomic import write_text

    return write_text(out, report_html(sections, title, base_dirs))
