"""One line per ratio, with its spread over repeats: the format ``make bench`` (``benchmarks/run_all.py``) collects.

Each repeat times the methods back to back (interleaved), so a ratio is taken within a repeat, where the
machine's state is shared, and its spread over repeats shows how much of it is noise.

    >>> print_ratio("capture: nnsight expert / layerscope", [1.1, 1.2, 1.0], [1.0, 1.0, 1.0], at_least=1.08)
    ratio capture: nnsight expert / layerscope = 1.10x (1.00-1.20 over 3 repeats; target >= 1.08: below)
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence

PREFIX = "ratio "


def ratio_line(
    name: str,
    numerator: Sequence[float],
    denominator: Sequence[float],
    *,
    at_least: float | None = None,
    at_most: float | None = None,
) -> str:
    """``ratio NAME = MEDIANx (MIN-MAX over N repeats[; target ...])`` of ``numerator[i] / denominator[i]``."""
    if len(numerator) != len(denominator) or not numerator:
        raise ValueError(f"{name}: {len(numerator)} and {len(denominator)} repeats; need the same number, >= 1")
    ratios = [n / d for n, d in zip(numerator, denominator)]
    median = statistics.median(ratios)
    text = f"{PREFIX}{name} = {median:.2f}x ({min(ratios):.2f}-{max(ratios):.2f} over {len(ratios)} repeats"
    if at_least is not None:
        verdict = "met in every repeat" if min(ratios) >= at_least else "below"
        text += f"; target >= {at_least:g}: {verdict}"
    if at_most is not None:
        verdict = "met in every repeat" if max(ratios) <= at_most else "above"
        text += f"; target <= {at_most:g}: {verdict}"
    return text + ")"


def print_ratio(name: str, numerator: Sequence[float], denominator: Sequence[float], **targets) -> None:
    """Print :func:`ratio_line` (flushed: ``run_all.py`` reads the lines as they come)."""
    print(ratio_line(name, numerator, denominator, **targets), flush=True)
