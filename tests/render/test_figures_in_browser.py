"""Every figure of a full tour, standalone and in the report, read in a real browser: no text overlaps.

Titles, axis titles, tick labels, annotations, legend entries, colour-bar labels, slider labels and buttons
are boxes in the DOM; no two may overlap. Each report section is kept as a screenshot artifact
(``$LAYERSCOPE_ARTIFACTS`` or ``build/test-artifacts``).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from browser_checks import ARTIFACTS, overlaps

pytestmark = pytest.mark.default_model


def _open(browser, path: Path):
    tab = browser.new_page(viewport={"width": 1400, "height": 1000})
    tab.goto(path.as_uri(), wait_until="load")
    tab.wait_for_function("document.querySelectorAll('.js-plotly-plot .main-svg').length > 0")
    tab.wait_for_timeout(500)
    return tab


def test_no_text_overlaps_in_any_standalone_figure(browser, full_tour):
    pages = sorted(p for p in full_tour.glob("*/*.html") if (p.with_suffix(".plotly.json")).is_file())
    assert len(pages) >= 8, pages
    found = {}
    for path in pages:
        tab = _open(browser, path)
        try:
            clashes = overlaps(tab)
        finally:
            tab.close()
        if clashes:
            found[str(path.relative_to(full_tour))] = clashes[:5]
    assert not found


def test_no_text_overlaps_in_the_report_and_each_section_is_kept(browser, full_tour):
    tab = _open(browser, full_tour / "report.html")
    try:
        assert overlaps(tab) == []
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        sections = tab.locator("section[data-experiment]")
        names = []
        for index in range(sections.count()):
            section = sections.nth(index)
            name = section.get_attribute("data-experiment")
            section.scroll_into_view_if_needed()
            tab.wait_for_timeout(200)
            section.screenshot(path=str(ARTIFACTS / f"report-section-{index}-{name}.png"))
            names.append(name)
        assert names == ["tokens", "layers", "inspect", "ablate", "patch", "echo", "layout", "compare"]
    finally:
        tab.close()


def test_the_prompt_selector_shows_each_prompt_without_overlaps(browser, full_tour):
    tab = _open(browser, full_tour / "inspect" / "heatmap.html")
    try:
        menus = tab.evaluate("() => document.querySelector('.js-plotly-plot').layout.updatemenus || []")
        assert menus and len(menus[0]["buttons"]) == 16  # one entry per prompt beyond what fits as panels
        tab.locator(".updatemenu-header-group").first.click()
        tab.wait_for_timeout(300)
        tab.locator(".updatemenu-dropdown-button").nth(5).click()
        tab.wait_for_timeout(500)
        shown = tab.evaluate(
            "() => document.querySelector('.js-plotly-plot').data.filter(t => t.visible !== false).length"
        )
        assert shown >= 1
        assert overlaps(tab) == []
    finally:
        tab.close()


def test_every_figure_of_the_tour_has_its_png_and_every_report_section_a_figure(full_tour, browser):
    """The README's promise: each figure as HTML and as PNG (echo's chart, the layout treemap and compare's
    agreement table included); and no report section without a figure."""
    specs = sorted(full_tour.glob("*/*.plotly.json"))
    assert len(specs) >= 8, specs
    # the layer slider (layers) and the projection (tokens) have their PNGs under the names the README gives
    png_names = {("layers", "index"): "grid", ("tokens", "index"): "figure"}
    missing = []
    for spec in specs:
        stem = spec.name[: -len(".plotly.json")]
        png = spec.with_name(png_names.get((spec.parent.name, stem), stem) + ".png")
        if not png.is_file():
            missing.append(str(spec.relative_to(full_tour)))
    assert not missing, missing
    tab = _open(browser, full_tour / "report.html")
    try:
        sections = tab.locator("section[data-experiment]")
        empty = [
            sections.nth(i).get_attribute("data-experiment")
            for i in range(sections.count())
            if sections.nth(i).locator("div.figure, img.static").count() == 0
        ]
        assert not empty, empty
    finally:
        tab.close()
