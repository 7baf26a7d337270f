"""PNG figures render every script of the built-in sets and of CJK, accented and emoji labels, warning-free."""

from __future__ import annotations

import io
import os
import warnings

import numpy as np
import pandas as pd
import pytest

from layerscope.fonts import font_fallback, font_families
from layerscope.render.scatter import ProjectionFigure
from layerscope.tokensets import BUILTIN_SETS

FONTS = font_families()
pytestmark = pytest.mark.skipif(
    "Noto Sans CJK JP" not in FONTS and not os.environ.get("CI"),
    reason="Debian's fonts-noto-cjk and fonts-symbola are not installed (make test installs them)",
)


def _table(words: dict[str, list[str]]) -> pd.DataFrame:
    rows = [(name, word) for name, items in words.items() for word in items]
    coords = np.random.default_rng(0).normal(size=(len(rows), 2))
    return pd.DataFrame(
        {"set": [r[0] for r in rows], "label": [r[1] for r in rows], "pc1": coords[:, 0], "pc2": coords[:, 1]}
    )


@pytest.mark.parametrize(
    "words",
    [dict(BUILTIN_SETS), {"mixed": ["東京", "café", "🙂", "Ünïcödé", "서울", "ありがとう", "naïve"]}],
    ids=["built-in sets", "cjk-accents-emoji"],
)
def test_png_renders_every_glyph_without_warnings(words):
    assert FONTS[:1] == ["DejaVu Sans"] and "Symbola" in FONTS
    with warnings.catch_warnings(), font_fallback():
        warnings.simplefilter("error")  # "Glyph ... missing from font(s)" would raise
        fig = ProjectionFigure("東京 café 🙂", _table(words), [0.5, 0.2], connect=False).png()
        fig.savefig(io.BytesIO(), format="png")


def test_the_fallback_is_not_left_behind():
    import matplotlib

    before = list(matplotlib.rcParams["font.family"])
    with font_fallback():
        assert matplotlib.rcParams["font.family"] == FONTS
    assert list(matplotlib.rcParams["font.family"]) == before
