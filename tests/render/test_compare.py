"""compare's figures: one pair at a time with a selector, best matches marked, the agreement table."""

from __future__ import annotations

import numpy as np
import pandas as pd
from png_checks import assert_text_inside_and_readable

from layerscope.analysis.pair_cka import PairCKA
from layerscope.render.compare import AgreementTable, agreement_figure, cka_figure, cka_png, errors_figure, errors_png


def _pair(a, b, la, lb, seed):
    rng = np.random.default_rng(seed)
    linear = rng.uniform(size=(la, lb))
    linear[0] = np.nan  # a layer without spread
    names = lambda n: ["embed", *map(str, range(n - 2)), "norm"]  # noqa: E731
    return PairCKA(a, b, names(la), names(lb), linear, linear * 0.9, list(range(la)), list(range(lb)))


def test_cka_figure_shows_one_pair_at_a_time_with_best_matches():
    pairs = [_pair("a", "b", 5, 7, 0), _pair("a", "c", 5, 4, 1)]
    fig = cka_figure(pairs, title="t")
    heatmaps = [t for t in fig.data if t.type == "heatmap"]
    marks = [t for t in fig.data if t.type == "scatter"]
    assert len(heatmaps) == 4 and len(marks) == 4
    assert [t.visible for t in fig.data] == [True] * 4 + [False] * 4
    buttons = fig.layout.updatemenus[0].buttons
    assert [b.label for b in buttons] == ["a vs b", "a vs c"]
    assert buttons[1].args[0]["visible"] == [False] * 4 + [True] * 4
    best = pairs[0].best()
    assert best[0] is None and list(marks[0].x) == [pairs[0].layers_b[j] for j in best[1:]]
    assert list(heatmaps[0].z[0]) == [None] * 7  # no CKA: an empty row
    png = cka_png(pairs, title="t")
    assert len([ax for ax in png.axes if ax.get_title()]) == 4


def test_the_cka_png_and_html_show_the_same_matrices_and_best_matches():
    """Both views are drawn from one description: each PNG panel's image is the HTML heatmap's z (NaN where the
    HTML leaves a gap), and its outlined cells are the HTML's best-match markers."""
    pairs = [_pair("a", "b", 5, 7, 0), _pair("a", "c", 6, 4, 1)]
    fig, png = cka_figure(pairs, title="t"), cka_png(pairs, title="t")
    heatmaps = [t for t in fig.data if t.type == "heatmap"]
    marks = [t for t in fig.data if t.type == "scatter"]
    panels = [ax for ax in png.axes if ax.get_title()]
    assert len(panels) == len(heatmaps) == 4
    for k, (ax, heat, mark) in enumerate(zip(panels, heatmaps, marks)):
        pair = pairs[k // 2]
        html_z = np.array([[np.nan if v is None else v for v in row] for row in heat.z], dtype=float)
        png_z = np.ma.filled(ax.images[0].get_array().astype(float), np.nan)
        np.testing.assert_array_equal(png_z, html_z)
        assert ax.get_title().endswith(f"{pair.a} vs {pair.b}") and heat.name in ax.get_title()
        xs, ys = ax.collections[0].get_offsets().T
        assert [pair.layers_b[int(x)] for x in xs] == list(mark.x)
        assert [pair.layers_a[int(y)] for y in ys] == list(mark.y)


def test_errors_and_agreement_figures():
    errors = pd.DataFrame(
        {
            "model": ["q8"] * 3 + ["q4"] * 3,
            "layer": ["embed", "0", "norm"] * 2,
            "relative_error": [0.01, 0.02, 0.04, 0.1, 0.2, 0.6],
            "cosine": [1.0, 0.999, 0.99, 0.99, 0.98, 0.8],
        }
    )
    fig = errors_figure(errors, title="t")
    assert fig.layout.yaxis.type == "log" and len(fig.data) == 4
    assert errors_png(errors, title="t").axes[0].get_yscale() == "log"
    agreement = pd.DataFrame(
        {"model": ["q8", "q4"], "top1_agreement": [1.0, 0.75], "mean_kl": [0.002, 0.5], "grows_most_at": ["12", None]}
    )
    table = agreement_figure(agreement, title="t").data[0]
    assert list(table.header.values) == ["model", "top-1 agreement", "mean KL (nats)", "error grows most at block"]
    assert list(table.cells.values[3]) == ["12", "–"]


def test_the_agreement_png_and_html_show_the_same_cells():
    """One description, two views: the PNG table's cells are the HTML table's cells, its headings the HTML's
    (wrapped), its text at least 9 points and inside the image."""
    agreement = pd.DataFrame(
        {"model": ["q8", "q4"], "top1_agreement": [1.0, 0.75], "mean_kl": [0.002, 0.5], "grows_most_at": ["12", None]}
    )
    description = AgreementTable.of(agreement, title="t")
    interactive, png = description.plotly().data[0], description.png()
    cells = png.axes[0].tables[0].get_celld()
    drawn = [[cells[r, c].get_text().get_text() for c in range(4)] for r in range(1, 3)]
    assert drawn == [list(row) for row in zip(*interactive.cells.values)] == description.rows
    assert [cells[0, c].get_text().get_text().replace("\n", " ") for c in range(4)] == list(interactive.header.values)
    assert_text_inside_and_readable(png)
