"""``layerscope layers``: word categories at every layer, PCA per layer or on one basis (seed 002)."""

HELP = "token sets at every layer: PCA per layer or on one layer's basis, with separation metrics"
DESCRIPTION = (
    "Capture each word's residual stream at every layer ('embed' = the embedding output, then the output "
    "of each decoder block 0..n-1), project it with PCA (each layer on its own basis, or all on one "
    "layer's basis), and measure how the categories separate. Writes projection.csv, metrics.csv, "
    "index.html (layer slider), grid.png, layers/*.png, metrics.png and run.json."
)
