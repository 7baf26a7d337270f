"""``layerscope stages``: inside an embedding model, embed and every layer, then pooling, Dense and Normalize, with PCA."""

HELP = "sentence vectors at every stage of an embedding model (layers, pooling, dense, normalize), PCA per stage"
DESCRIPTION = (
    "Sentence vectors at every named stage of an embedding model: embed and each transformer layer "
    "(0, 1, ...; pooled the model's way), then pooling, each Dense and Normalize; PCA per stage, one figure per stage."
)
