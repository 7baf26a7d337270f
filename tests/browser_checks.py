"""What the browser tests share: Debian's chromium, its flags, where artifacts go, and text-overlap checks."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(
    os.environ.get("LAYERSCOPE_ARTIFACTS", Path(__file__).resolve().parents[1] / "build" / "test-artifacts")
)

# Text a reader must be able to read: titles, axis titles, tick labels, annotations, legend entries,
# slider labels and button labels. Point labels of scatter plots are data, free to crowd.
TEXT_SELECTORS = (
    ".gtitle, .g-xtitle text, .g-ytitle text, .xtick text, .ytick text, .annotation-text, "
    ".legendtext, .legendtitletext, .slider-label, .updatemenu-item-text, .cbtitle text, .cbaxis text"
)

# For every plotly figure under ``root``: the text elements' boxes, then each pair that overlaps by more
# than ``slack`` pixels both ways. Hidden elements (no size, or display none) are left out.
OVERLAPS_JS = """
([root, selector, slack]) => {
  const found = [];
  for (const plot of document.querySelectorAll(root + ' .js-plotly-plot')) {
    const boxes = [];
    for (const el of plot.querySelectorAll(selector)) {
      const r = el.getBoundingClientRect();
      const style = getComputedStyle(el);
      if (r.width < 1 || r.height < 1 || style.display === 'none' || style.visibility === 'hidden' ||
          el.closest('[display=none]') || !el.textContent.trim()) continue;
      boxes.push({text: el.textContent.trim().slice(0, 40), cls: el.getAttribute('class') || el.parentNode.getAttribute('class'),
                   x0: r.left, y0: r.top, x1: r.right, y1: r.bottom});
    }
    for (let i = 0; i < boxes.length; i++) for (let j = i + 1; j < boxes.length; j++) {
      const a = boxes[i], b = boxes[j];
      const dx = Math.min(a.x1, b.x1) - Math.max(a.x0, b.x0), dy = Math.min(a.y1, b.y1) - Math.max(a.y0, b.y0);
      if (dx > slack && dy > slack) found.push([plot.id || plot.parentNode.id || 'figure', a.text, a.cls, b.text, b.cls]);
    }
  }
  return found;
}
"""


def overlaps(page, root: str = "body", slack: float = 2.0) -> list[list[str]]:
    """``[[figure, text a, class a, text b, class b], ...]`` for every pair of overlapping text elements."""
    return page.evaluate(OVERLAPS_JS, [root, TEXT_SELECTORS, slack])
