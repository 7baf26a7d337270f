"""``layerscope compare``: models and quantizations side by side, layer by layer."""

HELP = "compare models (any families) and formats of one model, layer by layer"
DESCRIPTION = (
    "Run the same words or prompts through two or more models, read the last token of each at every "
    "layer, and compare: linear and debiased CKA between every layer of each pair (heatmaps, best "
    "matches), and against the reference (the first model) where depth, width and tokenization agree: "
    "relative error and cosine per layer, next-token top-1 agreement and KL (prompts), per-tensor weight "
    "error (checkpoints of one architecture)."
)
