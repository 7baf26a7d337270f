"""The fonts matplotlib tries for figure text, glyph by glyph: Latin, CJK, symbols and emoji.

A base facility (like :mod:`layerscope.progress`): the run directory saves PNGs inside :func:`font_fallback`,
and the figures in :mod:`layerscope.render` lay out their text inside it. matplotlib is imported only when used.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

# Tried glyph by glyph, in order: Latin and most scripts, then CJK, then symbols and emoji (Debian's
# fonts-noto-cjk and fonts-symbola; ``make test`` installs them). Missing ones are skipped.
FALLBACK_FONTS = ("DejaVu Sans", "Noto Sans CJK JP", "Symbola")
_FONT_FILES = {"Noto Sans CJK JP": "NotoSansCJK-Regular", "Symbola": "Symbola"}


def font_families() -> list[str]:
    """The fallback list of font families installed here (registering system fonts matplotlib's cache missed)."""
    from matplotlib import font_manager

    known = {entry.name for entry in font_manager.fontManager.ttflist}
    missing = {family: stem for family, stem in _FONT_FILES.items() if family not in known}
    if missing:
        for path in font_manager.findSystemFonts():
            for family, stem in list(missing.items()):
                if stem.lower() in path.lower().rsplit("/", 1)[-1].lower():
                    font_manager.fontManager.addfont(path)
                    missing.pop(family)
        known = {entry.name for entry in font_manager.fontManager.ttflist}
    return [family for family in FALLBACK_FONTS if family in known] or ["DejaVu Sans"]


@contextlib.contextmanager
def font_fallback() -> Iterator[None]:
    """Within the block, figures' text falls back through :data:`FALLBACK_FONTS` (CJK, emoji); nothing stays set."""
    import matplotlib

    with matplotlib.rc_context({"font.family": font_families()}):
        yield
