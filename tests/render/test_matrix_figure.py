"""Layer-by-layer matrices: one description drawn as plotly and PNG; an undefined cell is gray, never a value."""

from __future__ import annotations

import numpy as np
from png_checks import assert_text_inside_and_readable

from layerscope.render.matrix_figure import MatrixFigure

LABELS = ["embed", "0", "1", "2"]


def _figure() -> MatrixFigure:
    cka = np.array([[np.nan] * 4, [np.nan, 1, 0.9, 0.8], [np.nan, 0.9, 1, 0.95], [np.nan, 0.8, 0.95, 1]])
    return MatrixFigure("t", {"linear CKA": cka, "mean cosine": np.eye(4)}, LABELS, [2])


def test_an_undefined_cka_row_is_not_drawn_as_zero():
    figure = _figure()
    interactive = figure.plotly()
    assert list(interactive.data[0].z[0]) == [None, None, None, None]
    assert interactive.data[0].z[1][0] is None and interactive.data[0].z[1][1] == 1
    assert "undefined" in interactive.layout.title.text
    png = figure.png()
    drawn = png.axes[0].images[0].get_array()
    assert drawn.mask[0].all() and drawn.mask[:, 0].all() and not drawn.mask[1:, 1:].any()
    assert "undefined" in png.get_supxlabel()


def test_every_label_lies_inside_the_png_and_no_text_is_under_nine_points():
    texts = assert_text_inside_and_readable(_figure().png())
    assert {"layer", "embed"} <= {t.get_text() for t in texts}


def test_a_figure_without_undefined_cells_has_no_note():
    figure = MatrixFigure("t", {"m": np.eye(3)}, LABELS[:3], [])
    assert not figure.png().get_supxlabel()
    assert figure.plotly().layout.title.text == "t"
