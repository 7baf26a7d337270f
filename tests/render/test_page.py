"""The tour's report page in a real browser (Debian's chromium, driven headless by Playwright).

The page must load without console errors, render a plot in every section, hide a category on a
legend click, and change the plotted layer with the layer slider. The page is the session's full tour of the
default model (the ``full_tour`` fixture, which the other browser checks read too). A screenshot is kept as an
artifact (``$LAYERSCOPE_ARTIFACTS`` or ``build/test-artifacts``).
"""

from __future__ import annotations

import pytest
from browser_checks import ARTIFACTS

pytestmark = pytest.mark.default_model


@pytest.fixture(scope="module")
def page(browser, full_tour):
    tab = browser.new_page(viewport={"width": 1400, "height": 1000})
    try:
        errors: list[str] = []
        tab.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
        tab.on("pageerror", lambda exc: errors.append(str(exc)))
        tab.goto((full_tour / "report.html").as_uri(), wait_until="load")
        tab.wait_for_function("document.querySelectorAll('div.figure .main-svg').length > 0")
        tab.console_errors = errors
        yield tab
    finally:
        tab.close()


def test_page_loads_without_console_errors(page):
    page.wait_for_timeout(500)
    assert page.console_errors == []


def test_screenshot_artifact(page):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / "report.png"
    page.screenshot(path=str(path), full_page=False)
    assert path.stat().st_size > 10_000


def test_every_section_has_rendered_a_plot(page):
    counts = page.evaluate(
        """() => Array.from(document.querySelectorAll('section')).map(s => [
            s.dataset.experiment, s.querySelectorAll('div.figure .main-svg').length])"""
    )
    assert counts, "the page has no section"
    for experiment, rendered in counts:
        assert rendered > 0, f"section {experiment} rendered no plot"


def _wait_until(page, selector: str, condition: str, timeout_ms: int = 15_000) -> None:
    """Poll ``condition`` (JavaScript over ``div``, the first element matching ``selector``) until it holds."""
    page.wait_for_function(
        f"() => {{ const div = document.querySelector({selector!r}); return {condition}; }}", timeout=timeout_ms
    )


def test_legend_click_hides_a_category(page):
    figure = page.locator("section[data-experiment='tokens'] div.figure").first
    box = figure.locator(".legend .traces").first.bounding_box()
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)  # a real click, as a person does
    _wait_until(page, "section[data-experiment='tokens'] div.figure", "div.data[0].visible === 'legendonly'")
    visible = figure.evaluate("div => div.data.map(t => t.visible)")
    assert visible[0] == "legendonly" and visible[1] in (True, None)


def test_layer_slider_changes_the_plotted_layer(page):
    figure = page.locator("section[data-experiment='layers'] div.figure").first
    figure.scroll_into_view_if_needed()
    before = figure.evaluate("div => [div.layout.sliders[0].active, Array.from(div.data[0].x)]")
    rail = figure.locator(".slider-rail-rect").first.bounding_box()
    page.mouse.click(rail["x"] + rail["width"] - 3, rail["y"] + rail["height"] / 2)  # the last layer
    _wait_until(page, "section[data-experiment='layers'] div.figure", f"div.layout.sliders[0].active !== {before[0]}")
    page.wait_for_timeout(800)  # let the frame transition finish
    after = figure.evaluate("div => [div.layout.sliders[0].active, Array.from(div.data[0].x)]")
    assert after[0] != before[0] and after[0] == len(figure.evaluate("div => div.layout.sliders[0].steps")) - 1
    assert after[1] != before[1]  # the points moved to the other layer's projection
    assert page.console_errors == []


def _boxes(figure, selector: str) -> list[dict]:
    return [b for b in (e.bounding_box() for e in figure.locator(selector).all()) if b and b["width"] > 0]


def _overlap(a: dict, b: dict, slack: float = 1.0) -> bool:
    return (
        a["x"] + slack < b["x"] + b["width"]
        and b["x"] + slack < a["x"] + a["width"]
        and a["y"] + slack < b["y"] + b["height"]
        and b["y"] + slack < a["y"] + a["height"]
    )


# the slider's current-value text (plotly draws it as the slider label that starts with the prefix)
_CURRENT = "Array.from(div.querySelectorAll('.slider-container text')).find(t => t.textContent.startsWith('layer: ')).textContent"


def test_slider_waits_its_controls_never_overlap_and_its_label_names_the_plotted_layer(page):
    page.reload(wait_until="load")  # as opened: an earlier test moved the slider
    page.wait_for_function("document.querySelectorAll('div.figure .main-svg').length > 0")
    figure = page.locator("section[data-experiment='layers'] div.figure").first
    figure.scroll_into_view_if_needed()
    page.wait_for_timeout(1500)  # an autoplaying slider would have moved by now
    state = figure.evaluate(
        """div => [div.layout.sliders[0].active,
                   """
        + _CURRENT
        + """,
                   div.layout.sliders[0].steps.map(s => s.label)]"""
    )
    assert state[0] == 0 and state[1] == "layer: " + state[2][0]
    buttons = _boxes(figure, ".updatemenu-button")
    slider = (
        _boxes(figure, ".slider-rail-rect") + _boxes(figure, ".slider-label") + _boxes(figure, ".slider-current-value")
    )
    assert buttons and slider
    assert not [(b, s) for b in buttons for s in slider if _overlap(b, s)]
    texts = _boxes(figure, ".gtitle") + _boxes(figure, ".xtitle") + _boxes(figure, ".ytitle") + slider + buttons
    clashes = [(a, b) for i, a in enumerate(texts) for b in texts[i + 1 :] if a != b and _overlap(a, b)]
    assert not clashes
    rail = figure.locator(".slider-rail-rect").first.bounding_box()
    page.mouse.click(rail["x"] + rail["width"] / 2, rail["y"] + rail["height"] / 2)  # a middle layer
    _wait_until(page, "section[data-experiment='layers'] div.figure", "div.layout.sliders[0].active !== 0")
    page.wait_for_timeout(800)
    active, label, plotted, frame = figure.evaluate(
        """div => { const s = div.layout.sliders[0]; const step = s.steps[s.active];
                    const frame = div._transitionData._frames.find(f => f.name === step.args[0][0]);
                    return [s.active, """
        + _CURRENT
        + """,
                            Array.from(div.data[0].x), Array.from(frame.data[0].x)]; }"""
    )
    steps = figure.evaluate("div => div.layout.sliders[0].steps.map(s => s.label)")
    assert label == "layer: " + steps[active]
    assert plotted == frame  # the plotted points are that layer's
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    figure.screenshot(path=str(ARTIFACTS / "report-layers.png"))


def test_a_sentence_under_every_figure_and_no_raw_json_in_the_numbers(page):
    rows = page.evaluate(
        """() => Array.from(document.querySelectorAll('section')).map(s => [
            s.dataset.experiment,
            Array.from(s.querySelectorAll('div.figure')).map(f => {
                const next = f.nextElementSibling && f.nextElementSibling.nextElementSibling;  // after the spec
                return [f.dataset.figure, next && next.matches('p.finding') ? next.textContent : null,
                        f.getBoundingClientRect().bottom, next ? next.getBoundingClientRect().top : null];
            }),
            Array.from(s.querySelectorAll('dl.numbers dd')).map(d => d.textContent)])"""
    )
    for experiment, figures, numbers in rows:
        for stem, sentence, figure_bottom, sentence_top in figures:
            assert sentence, f"{experiment}/{stem} has no sentence under it"
            assert sentence_top >= figure_bottom - 1  # below the figure, not over it
        assert not [n for n in numbers if n.lstrip().startswith(("{", "[", '"'))], experiment
    header = page.locator("header p").first.text_content()
    assert "0.00 s" not in header and "load 0" not in page.content()
