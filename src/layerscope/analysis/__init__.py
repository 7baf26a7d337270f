"""Statistics on captured vectors, in numpy (no torch here)."""

from .layer_metrics import layer_metrics, residual_norm, top_variance_fraction
from .layer_projection import project_layers
from .pca import PCABasis, fit_pca
from .separation import between_within_ratio, pairwise_distances, silhouette

__all__ = [
    "PCABasis",
    "between_within_ratio",
    "fit_pca",
    "layer_metrics",
    "pairwise_distances",
    "project_layers",
    "residual_norm",
    "silhouette",
    "top_variance_fraction",
]
