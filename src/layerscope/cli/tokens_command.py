"""``layerscope tokens``: embedding rows of token sets, PCA to 2-D/3-D, interactive plot (seed 000)."""

HELP = "embedding rows of token sets projected with PCA (2-D/3-D)"
DESCRIPTION = "Embedding rows of token sets projected with PCA to 2-D or 3-D, as an interactive plot."
