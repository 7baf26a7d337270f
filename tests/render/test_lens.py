"""The logit lens figure: one description drawn as HTML and PNG."""

from __future__ import annotations

import numpy as np
from png_checks import assert_text_inside_and_readable

from layerscope.render.heatmap import visible_token
from layerscope.render.lens import LensFigure


def _lens():
    rng = np.random.default_rng(0)
    prob = rng.uniform(size=(5, 3))
    top = [[f" t{i}{j}" if j else "\n" for j in range(3)] for i in range(5)]
    hits = prob > 0.7
    prompts = ["5+2=", "The capital of France is a long prompt that the PNG shortens", "東京"]
    return LensFigure("a lens", prob, top, prompts, ["embed", "0", "1", "2", "norm"], hits=hits)


def test_the_lens_png_and_html_show_the_same_cells_tokens_and_outlines():
    """The PNG's image is the HTML heatmap's z (same 0..1 range), its cell texts the HTML's text, its outlined
    cells the HTML's markers, its rows the HTML's layers and its columns the HTML's prompts (shortened)."""
    figure = _lens()
    html, png = figure.plotly(), figure.png()
    heat, marks = html.data
    ax = png.axes[0]
    np.testing.assert_array_equal(ax.images[0].get_array(), np.asarray(heat.z))
    assert ax.images[0].get_clim() == (heat.zmin, heat.zmax) == (0, 1)
    rows, cols = np.asarray(heat.z).shape
    texts = {(round(t.get_position()[1]), round(t.get_position()[0])): t.get_text() for t in ax.texts}
    assert [[texts[i, j] for j in range(cols)] for i in range(rows)] == [list(r) for r in heat.text]
    assert heat.text[0][0] == visible_token("\n")
    outlined = sorted((round(p.get_y() + 0.5), round(p.get_x() + 0.5)) for p in ax.patches)
    assert outlined == sorted((list(heat.y).index(y), list(heat.x).index(x)) for x, y in zip(marks.x, marks.y))
    assert outlined and len(outlined) == int(figure.hits.sum())
    assert [t.get_text() for t in ax.get_yticklabels()] == list(heat.y)
    for tick, prompt in zip(ax.get_xticklabels(), heat.x):
        assert prompt.startswith(tick.get_text().removesuffix("…"))


def test_the_lens_png_text_is_at_least_9_points_and_inside_the_figure():
    assert_text_inside_and_readable(_lens().png())
