"""Checks on a static figure as drawn: every text inside the image and at least 9 points."""

from __future__ import annotations

from layerscope.render.line_figure import PNG_TEXT_PT


def png_texts(png) -> list:
    """The non-empty texts of ``png``, after drawing it (so that their places are final)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(png).draw()
    hidden = set()  # tick labels outside an axis' view are kept by matplotlib but not drawn
    for ax in png.axes:
        for axis in (ax.xaxis, ax.yaxis):
            low, high = sorted(axis.get_view_interval())
            slack = 1e-9 * max(1.0, abs(high - low))
            for tick in axis.get_major_ticks() + axis.get_minor_ticks():
                if not low - slack <= tick.get_loc() <= high + slack:
                    hidden |= {id(tick.label1), id(tick.label2)}
    texts = png.findobj(lambda a: hasattr(a, "get_text") and hasattr(a, "get_fontsize"))
    return [t for t in texts if t.get_text() and t.get_visible() and id(t) not in hidden]


def assert_text_inside_and_readable(png) -> list:
    """Every text of ``png`` lies inside the image (1 pixel of slack) and is at least ``PNG_TEXT_PT`` points;
    returns the texts."""
    texts = png_texts(png)
    renderer = png.canvas.get_renderer()
    box = png.bbox
    for text in texts:
        extent = text.get_window_extent(renderer)
        assert extent.x0 >= box.x0 - 1 and extent.y0 >= box.y0 - 1, text.get_text()
        assert extent.x1 <= box.x1 + 1 and extent.y1 <= box.y1 + 1, text.get_text()
        assert text.get_fontsize() >= PNG_TEXT_PT, (text.get_text(), text.get_fontsize())
    return texts
