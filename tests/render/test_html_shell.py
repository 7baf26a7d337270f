"""One page shell and one stylesheet for every HTML page layerscope writes; everything in it escaped."""

from __future__ import annotations

import json
from html.parser import HTMLParser

import numpy as np
import pytest
from safetensors.numpy import save_file

import layerscope
from layerscope.render.figure_page import figures_page
from layerscope.render.html_shell import STYLE, html_page


class _Page(HTMLParser):
    """The title text, the <style> elements and the header text, as a browser parses them."""

    def __init__(self):
        super().__init__()
        self.styles: list[str] = []
        self.title = ""
        self.h1 = ""
        self.nav: list[tuple[str, str]] = []
        self._in: str | None = None
        self._href = ""
        self.tags: list[str] = []

    def handle_starttag(self, tag, attrs):
        self._in = tag
        self.tags.append(tag)
        if tag == "style":
            self.styles.append("")
        if tag == "a":
            self._href = dict(attrs).get("href", "")

    def handle_endtag(self, tag):
        self._in = None

    def handle_data(self, data):
        if self._in == "style":
            self.styles[-1] += data
        elif self._in == "title":
            self.title += data
        elif self._in == "h1":
            self.h1 += data
        elif self._in == "a":
            self.nav.append((self._href, data))


def _parsed(page: str) -> _Page:
    parser = _Page()
    parser.feed(page)
    return parser


HOSTILE = "</title><script>alert('x')</script> & \"q\""


def test_the_shell_escapes_title_subtitle_and_navigation():
    page = html_page(HOSTILE, "<p>body</p>", subtitle=HOSTILE, nav=[('a"b', HOSTILE)])
    parsed = _parsed(page)
    assert parsed.title == parsed.h1 == HOSTILE
    assert parsed.nav == [('#a"b', HOSTILE)]
    assert "<script>" not in page and page.startswith("<!doctype html>")


def test_extra_css_cannot_end_the_style_element():
    page = html_page("t", "<p>x</p>", extra_css="p { color: red } </style><script>alert(1)</script>")
    parsed = _parsed(page)
    assert len(parsed.styles) == 1 and parsed.styles[0].endswith("alert(1)<\\/script>")  # text inside the style
    assert "script" not in parsed.tags and page.count("</style>") == 1


def _layout_page(tmp_path) -> str:
    save_file({"a.weight": np.zeros((2, 2), np.float32)}, str(tmp_path / "m.safetensors"))
    return layerscope.layout(tmp_path / "m.safetensors").html()


def _report_page(tmp_path) -> str:
    run = tmp_path / "run"
    run.mkdir()
    (run / "run.json").write_text(json.dumps({"experiment": "tokens", "models": [{"name": "tiny"}]}))
    (run / "index.plotly.json").write_text(json.dumps({"data": [], "layout": {}}))
    return layerscope.report([run], out=tmp_path / "report").html()


def _figures_page(tmp_path) -> str:
    import plotly.graph_objects as go

    return figures_page([(HOSTILE, go.Figure(go.Scatter(x=[1], y=[2]))), ("pooling", go.Figure())], title=HOSTILE)


@pytest.mark.parametrize("make", [_layout_page, _report_page, _figures_page], ids=["layout", "report", "figures"])
def test_every_page_has_the_one_shell_and_stylesheet(make, tmp_path):
    page = make(tmp_path)
    parsed = _parsed(page)
    assert page.startswith("<!doctype html>")
    assert parsed.styles == [STYLE]
    assert "<header><h1>" in page and "<main>" in page


def test_the_figures_page_escapes_its_captions(tmp_path):
    page = _figures_page(tmp_path)
    parsed = _parsed(page)
    assert parsed.title == HOSTILE and ("#figure-0", HOSTILE) in parsed.nav
    assert "alert('x')</script>" not in page
    assert page.count('<section id="figure-') == 2
