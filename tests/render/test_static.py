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
    with warnings.catch_warnings(), font_fallback(words, "東京 café 🙂"):
        warnings.simplefilter("error")  # "Glyph ... missing from font(s)" would raise
        fig = ProjectionFigure("東京 café 🙂", _table(words), [0.5, 0.2], connect=False).png()
        fig.savefig(io.BytesIO(), format="png")


def test_the_fallback_is_not_left_behind():
    import matplotlib

    before = list(matplotlib.rcParams["font.family"])
    with font_fallback():
        assert matplotlib.rcParams["font.family"] == FONTS
    assert list(matplotlib.rcParams["font.family"]) == before


#: a word per script beyond Latin, CJK and emoji that Gemma's tokenizer holds: Indic, Arabic, Hebrew, Thai, ...
SCRIPT_WORDS = {
    "Indic": ["नमस्ते", "বাংলা", "தமிழ்", "తెలుగు", "ಕನ್ನಡ", "മലയാളം", "ગુજરાતી", "ਪੰਜਾਬੀ", "ଓଡ଼ିଆ", "සිංහල"],
    "right-to-left": ["مرحبا", "שלום", "ދިވެހި", "ܣܘܪܝܝܐ"],
    "Southeast Asian": ["สวัสดี", "ລາວ", "ខ្មែរ", "မြန်မာ"],
    "other": ["ქართული", "Հայերեն", "አማርኛ", "བོད་ཡིག", "ᏣᎳᎩ", "ᓀᐦᐃᔭᐍᐏᐣ", "ⵜⴰⵎⴰⵣⵉⵖⵜ", "ᠮᠣᠩᠭᠣᠯ"],
}
NOTO = pytest.mark.skipif(
    not any(
        "NotoSansDevanagari-" in path for path in __import__("matplotlib.font_manager").font_manager.findSystemFonts()
    )
    and not os.environ.get("CI"),
    reason="Debian's fonts-noto-core is not installed (make test installs it)",
)


@NOTO
def test_png_draws_the_scripts_beyond_cjk_without_missing_glyphs():
    title = "नमस्ते مرحبا שלום สวัสดี"
    with warnings.catch_warnings(), font_fallback(SCRIPT_WORDS, title):
        warnings.simplefilter("error")  # "Glyph ... missing from font(s)" would raise
        fig = ProjectionFigure(title=title, table=_table(SCRIPT_WORDS), explained_ratio=[0.5, 0.2], connect=False).png()
        fig.savefig(io.BytesIO(), format="png")


@NOTO
def test_the_fallback_has_a_glyph_for_nearly_every_character_of_the_default_tokenizer(default_model):
    """Every character of Gemma's vocabulary that is drawn (not a control, format or combining mark) has a glyph in
    one of the fallback fonts, but emoji newer than Symbola's Unicode 9 and a few rare CJK ideographs."""
    import unicodedata

    from matplotlib import font_manager
    from matplotlib.ft2font import FT2Font

    words = default_model.tokenizer.get_vocab()
    drawn = {c for w in words for c in w if not c.isspace() and unicodedata.category(c)[0] not in "CMZ"}
    covered: set[int] = set()
    for family in FONTS:
        found = font_manager.findfont(family, fallback_to_default=False)
        covered |= set(FT2Font(found).get_charmap())
    missing = sorted(c for c in drawn if ord(c) not in covered)
    newer = [c for c in missing if unicodedata.name(c, "").startswith("CJK") or ord(c) >= 0x1F000]
    assert len(drawn) > 10_000
    assert missing == newer, [f"{c} {unicodedata.name(c, '?')}" for c in missing if c not in newer][:20]


@NOTO
def test_a_figure_tries_only_the_script_fonts_its_text_needs():
    """Every family is looked up for every text: a Latin figure keeps the short list, a Hindi one adds Devanagari."""
    import matplotlib

    with font_fallback(["one", "two"], pd.DataFrame({"label": ["three"]})):
        assert matplotlib.rcParams["font.family"] == ["DejaVu Sans", "Noto Sans CJK JP", "Symbola"]
    with font_fallback(pd.DataFrame({"label": ["नमस्ते", "one"]})):
        assert matplotlib.rcParams["font.family"] == [
            "DejaVu Sans",
            "Noto Sans Devanagari",
            "Noto Sans CJK JP",
            "Symbola",
        ]
    assert len(font_families()) > 30


@NOTO
def test_a_run_directory_draws_the_scripts_of_its_result(tmp_path):
    """The run directory saves a result's PNG with the script fonts its tables need: no missing glyph."""
    from dataclasses import dataclass

    from layerscope.experiment import Result
    from layerscope.experiments.tokens import TokensConfig
    from layerscope.rundir import RunDir

    table = _table(SCRIPT_WORDS)

    @dataclass(kw_only=True, repr=False)
    class Scripts(Result):
        table: pd.DataFrame

        def images(self):
            return {
                "scripts": lambda: ProjectionFigure(
                    title="scripts", table=self.table, explained_ratio=[0.5, 0.2], connect=False
                ).png()
            }

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        RunDir(tmp_path / "run").write(Scripts(config=TokensConfig(), table=table))
    assert (tmp_path / "run" / "scripts.png").stat().st_size > 10_000


def _drawn(text: str, *, reorder: bool) -> np.ndarray:
    """The pixels of ``text`` drawn alone, inside :func:`font_fallback` (``reorder``) or with its fonts only."""
    import matplotlib
    import matplotlib.pyplot as plt

    context = font_fallback(text) if reorder else matplotlib.rc_context({"font.family": font_families(text)})
    with context:
        fig = plt.figure(figsize=(3, 0.6), dpi=80)
        label = fig.text(0.05, 0.3, text, fontsize=14)
        fig.canvas.draw()
        pixels = np.asarray(fig.canvas.buffer_rgba()).copy()
        plt.close(fig)
    assert label.get_text() == text  # the figure's text stays as given
    return pixels


@NOTO
@pytest.mark.parametrize("line", ["abc שלום def", "מילה 42", "مرحبا بالعالم", "x ދިވެހި y"])
def test_right_to_left_text_is_drawn_in_reading_order(line):
    """What the PNG shows is what python-bidi and arabic-reshaper say is seen, left to right (drawn as stored)."""
    import arabic_reshaper
    from bidi import get_display

    seen = get_display(arabic_reshaper.reshape(line))
    assert seen != line
    np.testing.assert_array_equal(_drawn(line, reorder=True), _drawn(seen, reorder=False))
    assert not np.array_equal(_drawn(line, reorder=True), _drawn(line, reorder=False))


def test_left_to_right_text_is_drawn_as_stored():
    for line in ["café 42", "東京 🙂", "a\nb"]:
        np.testing.assert_array_equal(_drawn(line, reorder=True), _drawn(line, reorder=False))
