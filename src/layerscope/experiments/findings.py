"""Small helpers for the one-sentence findings each result writes under its figures (``Result.findings()``).

Example:
    >>> layer_phrase("13"), layer_phrase("embed"), share(17, 18), number(1350.2)
    ('block 13', 'the embedding', '17 of 18 (94%)', '1,350')
"""

from __future__ import annotations


def layer_phrase(name: str) -> str:
    """A layer name (``embed``, ``0``..``n-1``, ``norm``) as words: ``the embedding``, ``block 13``, ``the final norm``."""
    text = str(name)
    if text == "embed":
        return "the embedding"
    if text == "norm":
        return "the final norm"
    return f"block {text}" if text.lstrip("-").isdigit() else text


def blocks_phrase(removed: str) -> str:
    """``"4"`` -> ``block 4``; ``"4,5"`` -> ``blocks 4, 5``; ``"2,3,4,5"`` -> ``blocks 2-5``."""
    numbers = [int(n) for n in str(removed).replace(" ", "").split(",") if n.lstrip("-").isdigit()]
    if len(numbers) == 1:
        return f"block {numbers[0]}"
    if len(numbers) > 2 and numbers == list(range(numbers[0], numbers[-1] + 1)):
        return f"blocks {numbers[0]}-{numbers[-1]}"
    return "blocks " + ", ".join(map(str, numbers)) if numbers else f"blocks {removed}"


def number(value: float) -> str:
    """Three significant digits, no exponent for large values: ``1350.2`` -> ``'1,350'``; ``0.0249`` -> ``'0.0249'``."""
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.3g}"


def percent(value: float) -> str:
    """``0.944`` -> ``'94%'``; ``0.053`` -> ``'5.3%'``."""
    return f"{100 * value:.1f}%" if abs(value) < 0.1 and value != 0 else f"{100 * value:.0f}%"


def share(count: int, total: int) -> str:
    """``17 of 18 (94%)``."""
    return f"{count} of {total} ({percent(count / total)})" if total else f"{count} of {total}"
