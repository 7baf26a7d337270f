"""One colour per set, the same in HTML and PNG figures."""

from __future__ import annotations

# Tableau 10 followed by a few extra distinct colours.
PALETTE = [
    "#4e79a7",
    "#f28e2b",
    "#e15759",
    "#76b7b2",
    "#59a14f",
    "#edc948",
    "#b07aa1",
    "#ff9da7",
    "#9c755f",
    "#bab0ac",
    "#1f77b4",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
]


def color_map(names: list[str]) -> dict[str, str]:
    """Assign colours to names in order, cycling past the palette's end."""
    return {name: PALETTE[i % len(PALETTE)] for i, name in enumerate(dict.fromkeys(names))}
