"""Statistics on captured vectors, in numpy (no torch here)."""

from .pca import PCABasis, fit_pca

__all__ = ["PCABasis", "fit_pca"]
