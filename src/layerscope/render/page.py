"""The report page: plotly.js inlined once, a section per run, a table of contents (works offline).

Every value from a run directory (names, numbers, sentences, file names) is escaped with :func:`esc`; figure
specs go into ``<script type="application/json">`` elements with every ``<`` written as ``\\u003c``.
"""

from __future__ import annotations

import re

from .html_shell import esc, html_page
from .people import seconds_text

_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def _figure_div(section_index: int, figure_index: int, stem: str, spec: str) -> str:
    div_id = f"fig-{section_index}-{figure_index}"
    # '<' only occurs inside JSON strings: escaping every one keeps "</script>" and "<!--" from ending the element.
    safe_spec = spec.replace("<", "\\u003c")
    return (
        f'<div class="figure" id="{div_id}" data-figure="{esc(stem)}"></div>\n'
        f'<script type="application/json" id="{div_id}-spec">{safe_spec}</script>'
    )


def _small_table(table) -> str:
    head = "".join(f"<th>{esc(c)}</th>" for c in table.columns)
    rows = "".join("<tr>" + "".join(f"<td>{esc(v)}</td>" for v in row) + "</tr>" for row in table.rows)
    return f'<table class="small"><tr>{head}</tr>{rows}</table>'


def _meta(section) -> str:
    """``model loaded in 10.2 s · compute 3 ms · write 1.1 s`` (a phase that took no time is left out)."""
    parts = []
    if section.load_s is not None:
        parts.append(f"model loaded in {seconds_text(section.load_s)}")
    parts += [f"{key} {seconds_text(value)}" for key, value in section.timings.items() if key != "load"]
    return f'<p class="meta">{esc(" · ".join(parts))}</p>' if parts else ""


def _section_html(index: int, section) -> str:
    parts = [f'<section id="run-{index}" data-experiment="{esc(section.experiment)}">']
    parts.append(f"<h2>{esc(section.title)}</h2>")
    parts.append(_meta(section))
    parts.append(f'<pre class="command">{esc(section.command)}</pre>')
    shown: set[str] = set()
    for k, (stem, spec) in enumerate(section.figures):
        parts.append(_figure_div(index, k, stem, spec))
        if stem in section.findings:
            parts.append(f'<p class="finding" data-figure="{esc(stem)}">{esc(section.findings[stem])}</p>')
            shown.add(stem)
    for name, data in section.images:
        stem = name[: -len(".png")]
        parts.append(f'<img class="static" alt="{esc(name)}" src="data:image/png;base64,{esc(data)}">')
        if stem in section.findings and stem not in shown:
            parts.append(f'<p class="finding" data-figure="{esc(stem)}">{esc(section.findings[stem])}</p>')
            shown.add(stem)
    rest = [sentence for stem, sentence in section.findings.items() if stem not in shown]
    if rest:  # sentences about figures this run wrote only as a page of their own
        parts.append("<ul>" + "".join(f'<li class="finding">{esc(s)}</li>' for s in rest) + "</ul>")
    if section.numbers:
        parts.append('<dl class="numbers">')
        for key, value in section.numbers.items():
            shown_value = _small_table(value) if hasattr(value, "rows") else esc(value)
            parts.append(f"<dt>{esc(key)}</dt><dd>{shown_value}</dd>")
        parts.append("</dl>")
    for name, text in section.texts:
        parts.append(f'<details><summary>{esc(name)}</summary><pre class="text">{esc(text)}</pre></details>')
    for name, table, total in section.tables:  # tables: pandas HTML, cells escaped by pandas
        shown_rows = f"first {min(total, 25)} of {total} rows" if total > 25 else f"{total} rows"
        parts.append(f"<details><summary>{esc(name)} ({esc(shown_rows)})</summary>{table}</details>")
    if section.skipped:
        parts.append(f'<p class="skipped">not shown: {esc("; ".join(section.skipped))}</p>')
    parts.append("</section>")
    return "\n".join(p for p in parts if p)


# One figure that plotly cannot draw must not stop the others.
_SCRIPT = """
document.querySelectorAll('div.figure').forEach(function (div) {
  try {
    var spec = JSON.parse(document.getElementById(div.id + '-spec').textContent);
    var config = {displaylogo: false, responsive: true};
    Plotly.newPlot(div, {data: spec.data, layout: spec.layout || {}, frames: spec.frames || [], config: config})
      .catch(function (err) { div.className = 'figure-error'; div.textContent = 'this figure could not be drawn: ' + err; });
  } catch (err) {
    div.className = 'figure-error';
    div.textContent = 'this figure could not be drawn: ' + err;
  }
});
"""


def report_html(sections, title: str, base_dirs=None, *, load_s: float | None = None) -> str:
    """The whole report page for ``sections`` (see :class:`layerscope.render.section.Section`).

    ``load_s``: seconds the model shared by the runs took to load (a tour's), shown in the header;
    ``base_dirs`` is not used (a section holds what it shows).
    """
    from plotly.offline import get_plotlyjs

    nav = [(f"run-{i}", s.experiment) for i, s in enumerate(sections)]
    body = "\n".join(_section_html(i, s) for i, s in enumerate(sections))
    runs = f"{len(sections)} run{'s' if len(sections) != 1 else ''}"
    loaded = f"model loaded in {seconds_text(load_s)}; " if load_s else ""
    page = html_page(
        title,
        f"{body}\n<script>{_SCRIPT}</script>",
        subtitle=f"{loaded}{runs}; every figure is interactive and works offline.",
        nav=nav,
        head=f"<script>{get_plotlyjs()}</script>\n",
    )
    # A lone surrogate (JSON's "\ud800", a file name that is not UTF-8) cannot be written as UTF-8: shown as U+FFFD.
    return _LONE_SURROGATE.sub("\ufffd", page)
