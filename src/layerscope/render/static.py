"""Static figures with matplotlib (no browser needed), written as PNG by the run directory.

Figures are built with :class:`matplotlib.figure.Figure`, not pyplot: no backend is chosen or
switched, and nothing shows up by itself in a notebook.
"""

from __future__ import annotations

from matplotlib.figure import Figure

from ..fonts import font_fallback

#: ``font_fallback`` is here too, for the figures that lay out their text with it
__all__ = ["font_fallback", "new_figure"]


def new_figure(**kwargs) -> Figure:
    """A matplotlib figure outside pyplot (no backend, no global state)."""
    return Figure(**kwargs)
