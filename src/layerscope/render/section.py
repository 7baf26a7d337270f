"""One run directory as the report page shows it: plain text, figure specs and small tables (escaped by the page)."""

from __future__ import annotations

from dataclasses import dataclass, field

from .people import SmallTable, is_positive


@dataclass
class Section:
    """One run directory, ready to render; every string is plain text (the page escapes it)."""

    name: str
    experiment: str
    title: str
    command: str
    figures: list[tuple[str, str]] = field(default_factory=list)  # (file stem, plotly JSON spec)
    numbers: dict[str, str | SmallTable] = field(default_factory=dict)
    tables: list[tuple[str, str, int]] = field(default_factory=list)  # (file name, HTML table, total rows)
    images: list[tuple[str, str]] = field(default_factory=list)  # (PNG name, base64) when no interactive figure
    texts: list[tuple[str, str]] = field(default_factory=list)  # (file name, text) of .md / .txt outputs
    findings: dict[str, str] = field(default_factory=dict)  # figure stem -> one sentence about it
    timings: dict[str, float] = field(default_factory=dict)  # seconds per phase, from run.json
    skipped: list[str] = field(default_factory=list)  # files not read, with the reason
    created: str = ""  # when run.json was written (ISO time)

    @property
    def load_s(self) -> float | None:
        """Seconds this run took to load its model (None when it loaded none itself, as in a tour)."""
        value = self.timings.get("load")
        return float(value) if is_positive(value) else None
