"""The one HTML page shell of layerscope: a header, an optional table of contents, one stylesheet.

Every page layerscope writes (the report, a page of several figures, a checkpoint layout) goes through
:func:`html_page`, so they all look alike. The shell escapes the title, subtitle and navigation labels;
``body`` is HTML that its builder has escaped already (use :func:`esc` for any text in it).

Example:
    >>> page = html_page("Layout of model.safetensors", "<section><p>42 tensors</p></section>")
    >>> page.startswith("<!doctype html>")
    True
"""

from __future__ import annotations

import html
from collections.abc import Iterable

STYLE = """
:root { --ink: #222; --muted: #666; --line: #e5e5e5; --accent: #1f5fbf; --band: #1f2a44; }
body { font-family: -apple-system, 'Segoe UI', Roboto, Helvetica, Arial, sans-serif; margin: 0; color: var(--ink);
       background: #fafafa; line-height: 1.4; }
header { background: var(--band); color: white; padding: 18px 32px; }
header h1 { margin: 0; font-size: 24px; word-break: break-word; } header p { margin: 4px 0 0; opacity: 0.8; }
nav { padding: 10px 32px; background: white; border-bottom: 1px solid #ddd; position: sticky; top: 0; z-index: 5; }
nav a { margin-right: 16px; color: var(--accent); text-decoration: none; font-size: 14px; }
main { padding: 1px 0 18px; }
section { background: white; margin: 18px 32px; padding: 16px 24px; border-radius: 6px;
          box-shadow: 0 1px 3px rgba(0,0,0,0.08); }
section h2 { margin-top: 4px; font-size: 19px; word-break: break-word; }
pre.command { background: #f3f3f3; padding: 8px 12px; border-radius: 4px; overflow-x: auto; font-size: 13px; }
dl.numbers { display: grid; grid-template-columns: max-content 1fr; gap: 2px 16px; font-size: 13px; }
dl.numbers dt { font-weight: 600; color: #555; } dl.numbers dd { margin: 0; font-family: monospace; word-break: break-word; }
.figure { margin: 12px 0; border: 1px solid #eee; border-radius: 4px; }
details { margin: 8px 0; } summary { cursor: pointer; font-weight: 600; color: #333; }
table.data { border-collapse: collapse; font-size: 12px; margin: 6px 0; }
table.data th, table.data td { border-bottom: 1px solid #eee; padding: 3px 8px; text-align: left; }
table.data th { background: #f5f5f5; } table.data td.num, table.data th.num { text-align: right; }
img.static { max-width: 100%; }
pre.text { font-size: 12px; max-height: 480px; overflow: auto; background: #f8f8f8; padding: 8px; }
.muted { color: var(--muted); }
.tree { font-size: 14px; }
.tree details { margin: 2px 0 2px 1.2em; } .tree summary { font-weight: 600; }
.tree .t { margin-left: 1.2em; font-family: ui-monospace, monospace; } .tree .d { color: #777; }
.tree .q { color: #a05000; } .tree .f { margin-left: 1.2em; color: #777; font-style: italic; }
p.finding, li.finding { font-size: 14px; color: #333; } p.finding { margin: -6px 0 14px; }
p.meta { margin: -6px 0 8px; font-size: 13px; color: var(--muted); }
p.skipped { font-size: 12px; color: #a05000; }
table.small { border-collapse: collapse; font-size: 12px; font-family: monospace; }
table.small th, table.small td { border-bottom: 1px solid #eee; padding: 1px 8px 1px 0; text-align: left; }
table.small th { font-weight: 600; color: #555; }
.figure-error { padding: 12px; color: #a05000; font-size: 13px; }
"""


def esc(value: object) -> str:
    """``str(value)`` escaped for HTML text and double- or single-quoted attributes."""
    return html.escape(str(value), quote=True)


def _safe_css(css: str) -> str:
    # "</" inside a <style> element could end it; CSS reads "<\/" as the same two characters.
    return css.replace("</", "<\\/")


def html_page(
    title: str,
    body: str,
    extra_css: str = "",
    *,
    subtitle: str = "",
    nav: Iterable[tuple[str, str]] = (),
    head: str = "",
) -> str:
    """A whole self-contained HTML page in the one layerscope style.

    Args:
        title: the page title and heading (text; escaped here).
        body: the page content (HTML; its builder escapes what it puts in).
        extra_css: rules added after the shared stylesheet.
        subtitle: a line of text under the heading (escaped here).
        nav: ``(element id, label)`` pairs for a sticky table of contents (escaped here).
        head: extra HTML for ``<head>`` (an inlined script, for instance), already safe.
    """
    links = "".join(f'<a href="#{esc(anchor)}">{esc(label)}</a>' for anchor, label in nav)
    nav_html = f"<nav>{links}</nav>\n" if links else ""
    sub_html = f"<p>{esc(subtitle)}</p>" if subtitle else ""
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{esc(title)}</title>\n"
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<style>{STYLE}{_safe_css(extra_css)}</style>\n{head}"
        "</head><body>\n"
        f"<header><h1>{esc(title)}</h1>{sub_html}</header>\n"
        f"{nav_html}<main>\n{body}\n</main>\n</body></html>\n"
    )
