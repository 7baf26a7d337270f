"""Numbers and ``run.json`` values as people read them: ``164,800``, ``94%``, ``10.2 s``, ``3.0 MiB``, small tables.

Pure text formatting (no statistics): the report page and the console summaries show values through these.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

_TABLE_ROWS = 25
_LIST_ITEMS = 12
_TEXT_CHARS = 300


@dataclass
class SmallTable:
    """A nested ``run.json`` value as a small table of text cells (escaped when the page is written)."""

    columns: list[str]
    rows: list[list[str]]


def is_positive(value) -> bool:
    """A finite number above 0 (not a bool)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value > 0


def seconds_text(seconds: float) -> str:
    """``0.0035`` -> ``'4 ms'``; ``10.23`` -> ``'10.2 s'``; ``125`` -> ``'2 min 5 s'``."""
    if seconds < 0.9995:
        return f"{max(seconds * 1000, 1):.0f} ms"
    if seconds < 59.95:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest} s"


def bytes_text(n: int) -> str:
    """``512`` -> ``'512 B'``; ``3 * 2**20`` -> ``'3.0 MiB'``."""
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(size) < 1024 or unit == "TiB":
            return f"{n:,} B" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n:,} B"  # pragma: no cover


def _is_share(key: str) -> bool:
    return any(word in key for word in ("rate", "ratio", "share", "fraction"))


def number_text(value, key: str = "") -> str:
    """One value as a person reads it: ``164,800``; ``0.0362`` -> ``'0.036'``; a rate ``0.9444`` -> ``'94%'``."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        if key == "bytes" or key.endswith("_bytes"):
            return bytes_text(value)
        return f"{value:,}"
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        if _is_share(key) and 0.0 <= value <= 1.0:
            return f"{100 * value:.1f}%" if value < 0.1 else f"{100 * value:.0f}%"
        if value == 0:
            return "0"
        if abs(value) >= 1000:
            return f"{value:,.0f}"
        if abs(value) >= 0.01:
            return f"{value:.3g}"
        return f"{value:.2e}"
    text = str(value)
    return text if len(text) <= _TEXT_CHARS else text[:_TEXT_CHARS] + " ..."


def _scalar(value) -> bool:
    return value is None or isinstance(value, (str, int, float, bool))


def list_text(values: list, key: str = "") -> str:
    """A short comma list: the first 12 items, then how many there are in all."""
    shown = ", ".join(number_text(v, key) if _scalar(v) else "..." for v in values[:_LIST_ITEMS])
    return shown + (f", ... ({len(values)} in all)" if len(values) > _LIST_ITEMS else "")


def _cell(value, key: str) -> str | None:
    if _scalar(value):
        return number_text(value, key)
    if isinstance(value, list) and all(_scalar(v) for v in value):
        return list_text(value, key)
    return None


def value_display(key: str, value) -> str | SmallTable | None:
    """A ``run.json`` value as text or a small table; None for what reads badly (deeper nesting)."""
    if value in (None, [], {}, ""):
        return None
    cell = _cell(value, key)
    if cell is not None:
        return cell
    if isinstance(value, list) and all(isinstance(v, dict) for v in value):
        columns = list(dict.fromkeys(k for row in value for k in row))
        keep = [c for c in columns if all(_cell(row.get(c), c) is not None for row in value)]
        if not keep:
            return None
        rows = [[_cell(row.get(c), c) or "" for c in keep] for row in value[:_TABLE_ROWS]]
        if len(value) > _TABLE_ROWS:
            rows.append([f"... {len(value) - _TABLE_ROWS} more"] + [""] * (len(keep) - 1))
        return SmallTable([c.replace("_", " ") for c in keep], rows)
    if isinstance(value, dict):
        items = list(value.items())[:_TABLE_ROWS]
        if all(_cell(v, key) is not None for _, v in items):  # {name: number or list}
            return SmallTable(["", key.replace("_", " ")], [[str(k), _cell(v, key) or ""] for k, v in items])
        if all(isinstance(v, dict) or v is None for _, v in items):  # {name: {field: number}}
            columns = list(dict.fromkeys(c for _, v in items if v for c in v))
            keep = [c for c in columns if all(_cell((v or {}).get(c), c) is not None for _, v in items)]
            if keep:
                rows = [[str(k)] + [_cell((v or {}).get(c), c) or "" for c in keep] for k, v in items]
                return SmallTable(["", *[c.replace("_", " ") for c in keep]], rows)
    return None
