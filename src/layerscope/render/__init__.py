"""Figures: plotly (interactive, self-contained HTML) and matplotlib (PNG). No statistics here."""
