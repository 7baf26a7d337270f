"""The fonts matplotlib tries for figure text, glyph by glyph: Latin, every other script, CJK, symbols and emoji.

A base facility (like :mod:`layerscope.progress`): the run directory saves PNGs inside :func:`font_fallback`,
and the figures in :mod:`layerscope.render` lay out their text inside it. matplotlib is imported only when used.

The scripts beyond Latin, Greek and Cyrillic (Indic, Arabic, Hebrew, Thai, Ethiopic, Tibetan, ...) come from
Debian's ``fonts-noto-core``: one Noto Sans family per script (Noto Serif where a script has no sans, as Tibetan),
found among the system's fonts. ``make test`` and ``make demo`` install it.

matplotlib has no bidirectional layout or shaping: it draws characters left to right in the order they are
stored. Within :func:`font_fallback`, a line that holds right-to-left text (Arabic, Hebrew, Thaana, Syriac, ...)
is laid out and drawn in reading order (the Unicode bidirectional algorithm, ``python-bidi``), Arabic letters in
their joined forms (``arabic-reshaper``); the figure's text itself is left as it was given.
"""

from __future__ import annotations

import contextlib
import functools
import re
from collections.abc import Iterator

#: Tried glyph by glyph, in order: Latin and most European scripts, then the script fonts found
#: (:func:`script_fonts`), then CJK, then symbols and emoji (Debian's fonts-noto-cjk and fonts-symbola).
#: Missing ones are skipped.
FALLBACK_FONTS = ("DejaVu Sans", "Noto Sans CJK JP", "Symbola")
_FONT_FILES = {"Noto Sans CJK JP": "NotoSansCJK-Regular", "Symbola": "Symbola"}

#: a script font file of fonts-noto-core: ``NotoSansDevanagari-Regular.ttf``, ``NotoSerifTibetan-Regular.ttf``
_SCRIPT_FILE = re.compile(r"^Noto(Sans|Serif)([A-Z][A-Za-z]*)-Regular\.[ot]tf$")
#: Noto files that are no script of their own: variants of a family found anyway, or Latin (DejaVu has it)
_NOT_A_SCRIPT = ("Display", "Mono", "UI", "CJK", "Unjoined", "Looped")


def font_families(*texts) -> list[str]:
    """The fallback list of font families installed here (registering system fonts matplotlib's cache missed):
    with no ``texts``, every script font; with ``texts``, those their characters need (see :func:`font_fallback`)."""
    base, scripts = _families()
    if not texts:
        return [base[0], *scripts, *base[1:]]
    needed = _needed(_characters(texts), base, scripts)
    return [base[0], *[family for family in scripts if family in needed], *base[1:]]


@functools.cache
def _families() -> tuple[tuple[str, ...], tuple[str, ...]]:
    """``(base, scripts)``: DejaVu Sans, CJK and symbols installed here; the script fonts found."""
    from matplotlib import font_manager

    known = {entry.name for entry in font_manager.fontManager.ttflist}
    missing = {family: stem for family, stem in _FONT_FILES.items() if family not in known}
    system = font_manager.findSystemFonts()
    for path in system:
        for family, stem in list(missing.items()):
            if stem.lower() in path.lower().rsplit("/", 1)[-1].lower():
                font_manager.fontManager.addfont(path)
                missing.pop(family)
    scripts = script_fonts(system)
    known = {entry.name for entry in font_manager.fontManager.ttflist}
    base = [f for f in FALLBACK_FONTS[:1] if f in known] or ["DejaVu Sans"]
    base += [family for family in FALLBACK_FONTS[1:] if family in known]
    return tuple(base), tuple(family for family in scripts if family not in base)


@functools.cache
def _charmap(family: str) -> frozenset[int]:
    """The code points ``family``'s font has a glyph for."""
    from matplotlib import font_manager
    from matplotlib.ft2font import FT2Font

    try:
        return frozenset(FT2Font(font_manager.findfont(family, fallback_to_default=False)).get_charmap())
    except (OSError, RuntimeError, ValueError):
        return frozenset()


@functools.cache
def _covered(base: tuple[str, ...]) -> frozenset[int]:
    return frozenset().union(*(_charmap(family) for family in base))


def _needed(characters: set[str], base: tuple[str, ...], scripts: tuple[str, ...]) -> set[str]:
    """The script fonts that draw the ``characters`` the base fonts lack (the first that has each)."""
    covered = _covered(base)
    needed: set[str] = set()
    for code in {ord(c) for c in characters} - covered:
        family = next((f for f in scripts if code in _charmap(f)), None)
        if family is not None:
            needed.add(family)
    return needed


#: the most strings read from the sources given to :func:`font_fallback` (a huge table is sampled, not walked)
_MAX_STRINGS = 200_000


def _characters(sources) -> set[str]:
    """The characters of every string in ``sources``: strings, tables, mappings, sequences, dataclasses and
    matplotlib figures (their text), nested."""
    found: set[str] = set()
    stack, seen, budget = list(sources), set(), _MAX_STRINGS
    while stack and budget > 0:
        item = stack.pop()
        if isinstance(item, str):
            found.update(item)
            budget -= 1
        elif isinstance(item, (bytes, int, float, bool)) or item is None or id(item) in seen:
            continue
        else:
            seen.add(id(item))
            stack.extend(_parts(item))
    return found


def _parts(item) -> list:
    if hasattr(item, "findobj") and hasattr(item, "savefig"):  # a matplotlib figure: its text
        from matplotlib.text import Text

        return [text.get_text() for text in item.findobj(Text)]
    if hasattr(item, "select_dtypes") and hasattr(item, "columns"):  # a DataFrame: its text columns
        text = item.select_dtypes(include=["object", "string", "category"])
        return [str(c) for c in item.columns] + [v for column in text.columns for v in text[column].tolist()]
    if isinstance(item, dict):
        return [*item.keys(), *item.values()]
    if isinstance(item, (list, tuple, set, frozenset)):
        return list(item)
    if hasattr(item, "__dataclass_fields__"):
        return [getattr(item, name, None) for name in item.__dataclass_fields__]
    if hasattr(item, "tolist") and getattr(item, "dtype", None) is not None and item.dtype.kind in "OUS":
        return list(item.tolist())
    return []


def script_fonts(paths: list[str]) -> list[str]:
    """The family of each script font among ``paths`` (Noto Sans per script, Noto Serif where there is no sans),
    registered with matplotlib, in the order of their names."""
    from matplotlib import font_manager

    by_script: dict[str, tuple[str, str]] = {}
    for path in sorted(paths):
        match = _SCRIPT_FILE.match(path.rsplit("/", 1)[-1])
        if not match or any(word in match[2] for word in _NOT_A_SCRIPT):
            continue
        style, script = match[1], match[2]
        if script not in by_script or style == "Sans":
            by_script[script] = (style, path)
    known = {entry.fname: entry.name for entry in font_manager.fontManager.ttflist}
    families = []
    for _, path in sorted(by_script.values(), key=lambda item: item[1]):
        if path not in known:
            try:
                font_manager.fontManager.addfont(path)
            except (OSError, RuntimeError, ValueError):  # an unreadable font file: skipped
                continue
            known = {entry.fname: entry.name for entry in font_manager.fontManager.ttflist}
        if path in known:
            families.append(known[path])
    return list(dict.fromkeys(families))


@contextlib.contextmanager
def font_fallback(*texts) -> Iterator[None]:
    """Within the block, figures' text falls back through :func:`font_families` of ``texts`` (the strings a figure
    draws: strings, tables, sequences, dataclasses, or a built figure); nothing stays set.

    Each text takes the family list in force when it is made, so the strings given decide which script fonts
    are tried: matplotlib looks every family up for every text, and all of them for every text would make a
    figure ten times slower to draw. With no ``texts``, every script font is tried.
    """
    import matplotlib

    with matplotlib.rc_context({"font.family": font_families(*texts)}), _reading_order():
        yield


#: bidirectional classes of right-to-left characters (Hebrew and others, Arabic letters)
_RIGHT_TO_LEFT = frozenset({"R", "AL"})


def reading_order(line: str) -> str:
    """``line`` as it is seen, left to right: right-to-left runs reversed by the Unicode bidirectional algorithm,
    Arabic letters in their joined forms; a line without right-to-left characters is returned as it is."""
    import unicodedata

    if not any(unicodedata.bidirectional(c) in _RIGHT_TO_LEFT for c in line):
        return line
    import arabic_reshaper
    from bidi import get_display

    return get_display(arabic_reshaper.reshape(line))


@contextlib.contextmanager
def _reading_order() -> Iterator[None]:
    """While a figure's text is laid out and drawn, each line of it in :func:`reading_order` (matplotlib reads a
    text's lines through ``Text._get_wrapped_text``; nested uses reorder once)."""
    from matplotlib import text

    original = text.Text._get_wrapped_text
    if getattr(original, "reading_order", False):
        yield
        return

    def in_reading_order(self) -> str:
        return "\n".join(reading_order(line) for line in original(self).split("\n"))

    in_reading_order.reading_order = True
    text.Text._get_wrapped_text = in_reading_order
    try:
        yield
    finally:
        text.Text._get_wrapped_text = original
