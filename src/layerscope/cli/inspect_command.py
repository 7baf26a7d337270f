"""``layerscope inspect``: one position of some prompts in every layer (seed 001, first half)."""

HELP = "heatmaps, similarity, logit lens and layer phases of prompts, layer by layer"
DESCRIPTION = (
    "The residual vector at one position of each prompt at every layer (embed, blocks 0..n-1, norm): "
    "heatmaps, similarity to the expected answer's embedding and between prompts, the logit lens, and "
    "layer phases (3+ prompts)."
)
