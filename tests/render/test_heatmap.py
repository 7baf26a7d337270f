"""Heatmap figures: rows carry layer names on category axes; static versions are matplotlib Figures (no pyplot)."""

from __future__ import annotations

import sys

import numpy as np
from matplotlib.figure import Figure
from png_checks import assert_text_inside_and_readable

from layerscope.render.heatmap import ResidualFigure, ResidualPanel, residual_figure, residual_png
from layerscope.render.lens import LensFigure
from layerscope.render.matrix_figure import matrix_figure, matrix_png

NAMES = ["embed", "0", "1", "norm"]


def _panel(title="p"):
    values = np.arange(4 * 6, dtype=np.float32).reshape(4, 6) - 10
    return ResidualPanel(title, values, values.mean(1), np.sqrt((values**2).mean(1)))


def test_plotly_figures_keep_layer_names_as_categories():
    fig = residual_figure([_panel("a"), _panel("b")], NAMES, 5.0, "t")
    assert list(fig.data[1].y) == NAMES and fig.layout.yaxis.type == "category"
    matrices = {"linear CKA": np.eye(3), "mean cosine": np.eye(3)}
    fig = matrix_figure(matrices, NAMES[:3], "t", [1])
    assert list(fig.data[0].x) == NAMES[:3] and fig.layout.xaxis.type == "category"
    assert len(fig.layout.shapes) == 4  # a boundary: one vertical and one horizontal line per matrix
    fig = LensFigure("t", np.zeros((4, 2)), [["x", "y"]] * 4, ["12", "5+2="], NAMES).plotly()
    assert list(fig.data[0].y) == NAMES and fig.layout.xaxis.type == "category"


def _panels(n, d=6):
    rng = np.random.default_rng(n)
    out = []
    for i in range(n):
        values = rng.normal(size=(len(NAMES), d)) * (i + 1)
        out.append(ResidualPanel(f"prompt number {i} of a longer text", values, values.mean(1), rms=values.std(1)))
    return out


def _heatmaps(fig):
    return [t for t in fig.data if t.coloraxis == "coloraxis"]


def _strips(fig):
    return [t for t in fig.data if t.coloraxis == "coloraxis2"]


def _titles(fig):
    return [a for a in fig.layout.annotations if a.yref == "paper" and a.y == 1.0]


def _pixel_extent(annotation, fig, width_px=760):
    """An annotation's left and right edge in pixels at the narrowest width laid out for (a generous 0.65 em
    per character, an independent estimate of the text's width)."""
    margin = fig.layout.margin
    plot = width_px - margin.l - margin.r
    centre = margin.l + annotation.x * plot
    half = 0.65 * annotation.font.size * len(annotation.text) / 2
    return centre - half, centre + half


def test_one_prompt_keeps_the_layer_by_dimension_view_with_a_narrow_numbered_strip():
    (panel,) = _panels(1)
    fig = residual_figure([panel], NAMES, 2.0, "t", value_label="value / layer RMS")
    (heat,), (strip,) = _heatmaps(fig), _strips(fig)
    np.testing.assert_array_equal(heat.z, panel.values)
    np.testing.assert_array_equal(strip.z, np.stack([panel.mean, panel.rms], 1))
    assert list(heat.y) == NAMES and list(strip.y) == NAMES and fig.layout.yaxis.type == "category"
    assert fig.layout.yaxis.autorange == "reversed" and fig.layout.yaxis2.matches == "y"
    heat_domain, strip_domain = fig.layout.xaxis.domain, fig.layout.xaxis2.domain
    assert strip_domain[0] > heat_domain[1]  # beside it, not over it
    assert (strip_domain[1] - strip_domain[0]) < (heat_domain[1] - heat_domain[0]) / 4
    # the strip: its own colour scale with a colour bar, and its numbers written in the cells
    assert fig.layout.coloraxis2.colorbar.title.text and fig.layout.coloraxis.colorbar.title.text == "value / layer RMS"
    assert fig.layout.coloraxis2.cmax == -fig.layout.coloraxis2.cmin >= np.max(np.abs(strip.z))
    assert strip.text[0][1] == f"{panel.rms[0]:.3g}" and strip.texttemplate == "%{text}"
    assert not fig.layout.updatemenus
    assert fig.layout.xaxis.title.text == "dimension"


def test_several_prompts_are_small_multiples_on_one_scale_with_titles_that_fit():
    for n in (2, 4, 6):
        panels = _panels(n, d=640)
        fig = residual_figure(panels, NAMES, 2.5, "t")
        heats, strips = _heatmaps(fig), _strips(fig)
        assert len(heats) == len(strips) == n and not fig.layout.updatemenus
        assert fig.layout.coloraxis.cmin == -2.5 and fig.layout.coloraxis.cmax == 2.5
        assert all(t.visible is not False for t in fig.data)
        for panel, heat in zip(panels, heats):
            np.testing.assert_array_equal(heat.z, panel.values)
            assert list(heat.y) == NAMES
        axes = [fig.layout[f"yaxis{i if i > 1 else ''}"] for i in range(1, 2 * n + 1)]
        assert all(a.type == "category" and a.autorange == "reversed" for a in axes)
        assert sum(bool(a.showticklabels is not False) for a in axes) == 1  # layer names once, on the left
        # "dimension" once, no axis titles repeated under every panel
        texts = [a.text for a in fig.layout.annotations]
        assert texts.count("dimension") == 1
        assert not [i for i in range(1, 2 * n + 1) if fig.layout[f"xaxis{i if i > 1 else ''}"].title.text]
        titles = _titles(fig)
        assert len(titles) == n
        extents = sorted(_pixel_extent(a, fig) for a in titles)
        for (_, right), (left, _) in zip(extents, extents[1:]):
            assert right < left, (n, extents)
        # each title sits over its own panel
        for title, heat in zip(titles, heats):
            domain = fig.layout[heat.xaxis.replace("x", "xaxis")].domain
            assert domain[0] <= title.x <= domain[1] + 0.05
        assert len(fig.layout[heats[0].xaxis.replace("x", "xaxis")].tickvals) <= 3


def test_many_panels_side_by_side_keep_positive_widths():
    fig = residual_figure(_panels(60), NAMES, 2.0, "t", max_panels=60)
    domains = [fig.layout[f"xaxis{i if i > 1 else ''}"].domain for i in range(1, 121)]
    assert all(0 <= a < b <= 1 for a, b in domains)
    assert all(b[0] >= a[1] for a, b in zip(domains, domains[1:]))


def test_beyond_the_limit_one_prompt_at_a_time_with_a_selector():
    panels = _panels(16)
    fig = residual_figure(panels, NAMES, 2.0, "t", max_panels=6)
    (menu,) = fig.layout.updatemenus
    assert len(menu.buttons) == 16
    heats, strips = _heatmaps(fig), _strips(fig)
    assert fig.layout.coloraxis.cmin == -2.0 and fig.layout.coloraxis.cmax == 2.0  # one scale for all prompts
    for index, button in enumerate(menu.buttons):
        assert button.label.startswith(f"{index + 1}/16")
        visible = button.args[0]["visible"]
        assert len(visible) == len(fig.data)
        shown = [trace for trace, on in zip(fig.data, visible) if on]
        assert len(shown) == 2
        np.testing.assert_array_equal(shown[0].z, panels[index].values)
        np.testing.assert_array_equal(shown[1].z, np.stack([panels[index].mean, panels[index].rms], 1))
    # what shows before any choice: the first prompt
    assert [t.visible for t in heats] == [True] + [False] * 15 and [t.visible for t in strips][:2] == [True, False]
    assert menu.active == 0 and list(heats[0].y) == NAMES


def test_png_shows_the_first_panels_and_counts_the_rest():
    import warnings

    for n, more in ((1, 0), (4, 0), (16, 10)):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            fig = residual_png(_panels(n, d=64), NAMES, 2.0, "t", max_panels=6, html_name="heatmap.html")
            fig.canvas.draw()  # laid out without warnings
        heat_axes = [ax for ax in fig.axes if ax.get_title()]
        assert len(heat_axes) == min(n, 6)
        assert [t.get_text() for t in heat_axes[0].get_yticklabels()] == NAMES
        captions = [t.get_text() for t in fig.texts if "more prompt" in t.get_text()]
        if more:
            assert captions == [
                f"{more} more prompts in the HTML figure (heatmap.html), one at a time with a prompt selector"
            ]
        else:
            assert not captions
        images = [ax.images[0] for ax in fig.axes if ax.images and ax.images[0].get_array().shape[1] == 64]
        assert {im.get_clim() for im in images} == {(-2.0, 2.0)}


def test_titles_are_shortened_by_their_width():
    from layerscope.render.heatmap import shorten

    assert shorten("5+2=", 4) == "5+2="
    assert shorten("The capital of France is", 12) == "The capital…"
    assert len(shorten("東京東京東京東京東京", 10)) == 6  # five wide characters fill about eight, then "…"
    assert shorten("東京東京東京東京東京", 10).endswith("…")


def test_static_figures_are_figures_outside_pyplot():
    had_pyplot = "matplotlib.pyplot" in sys.modules
    figs = [
        residual_png([_panel()], NAMES, 5.0, "t"),
        matrix_png({"linear CKA": np.eye(3)}, NAMES[:3], "t", [1]),
        LensFigure("t", np.zeros((4, 2)), [["x", "y"]] * 4, ["a", "b"], NAMES).png(),
    ]
    assert all(type(f) is Figure for f in figs)
    assert [t.get_text() for t in figs[2].axes[0].get_yticklabels()] == NAMES
    assert [t.get_text() for t in figs[0].axes[0].get_yticklabels()] == NAMES
    if not had_pyplot:
        assert "matplotlib.pyplot" not in sys.modules


def test_tokens_are_shown_visibly():
    from layerscope.render.heatmap import visible_token

    assert visible_token(" the") == "␣the"
    assert visible_token("\n\n") == "\\n\\n"
    assert visible_token("\t\x01") == "\\t\\x01"
    assert visible_token("") == "∅"
    assert visible_token("東京 🙂") == "東京␣🙂"


def test_lens_marks_the_cells_whose_top1_is_the_target():
    import numpy as np

    prob = np.array([[0.1, 0.9], [0.2, 0.3]])
    top = [[" a", "7"], ["\n", "b"]]
    hits = np.array([[False, True], [False, False]])
    fig = LensFigure("t", prob, top, ["p1", "p2"], ["embed", "0"], hits=hits, hover=[["h"] * 2] * 2).plotly()
    assert [list(row) for row in fig.data[0].text] == [["␣a", "7"], ["\\n", "b"]]
    marker = fig.data[1]
    assert list(marker.x) == ["p2"] and list(marker.y) == ["embed"]
    image = LensFigure("t", prob, top, ["p1", "p2"], ["embed", "0"], hits=hits).png()
    assert len(image.axes[0].patches) == 1


def test_the_residual_png_and_html_show_the_same_panels_and_colour_ranges():
    """Both views are drawn from one :class:`ResidualFigure`: each PNG heatmap is the HTML heatmap's z with the
    same colour range, each strip the HTML strip's mean and RMS, on the same layer rows; the PNG shows the first
    ``max_panels`` prompts (the HTML all, one at a time beyond that)."""
    for n in (1, 4, 9):
        figure = ResidualFigure(_panels(n, d=16), NAMES, 2.0, "t", max_panels=6)
        html, png = figure.plotly(), figure.png()
        heats = [ax.images[0] for ax in png.axes if ax.images and ax.images[0].get_array().shape[1] == 16]
        strips = [ax.images[0] for ax in png.axes if ax.images and ax.images[0].get_array().shape[1] == 2]
        assert len(heats) == len(strips) == min(n, 6) and len(_heatmaps(html)) == n
        for image, trace, panel in zip(heats, _heatmaps(html), figure.panels):
            np.testing.assert_array_equal(image.get_array(), np.asarray(trace.z))
            assert image.get_clim() == (html.layout.coloraxis.cmin, html.layout.coloraxis.cmax)
            assert panel.title in trace.name and list(trace.y) == NAMES
        for image, trace in zip(strips, _strips(html)):
            np.testing.assert_array_equal(image.get_array(), np.asarray(trace.z))
            assert image.get_clim() == (html.layout.coloraxis2.cmin, html.layout.coloraxis2.cmax)
        titled = [ax for ax in png.axes if ax.get_title()]
        for ax, panel in zip(titled, figure.panels):
            assert panel.title.startswith(ax.get_title().removesuffix("…"))
        assert [t.get_text() for t in titled[0].get_yticklabels()] == NAMES


def test_the_residual_png_text_is_at_least_9_points_and_inside_the_figure():
    for n in (1, 4, 9):
        assert_text_inside_and_readable(ResidualFigure(_panels(n, d=16), NAMES, 2.0, "t", html_name="h.html").png())
