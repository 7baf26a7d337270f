"""``layerscope patch``: activation patching by layer, position, attention head and MLP."""

HELP = "activation patching: which layer, position, head or MLP carries the answer"
DESCRIPTION = (
    "Run a clean prompt and a corrupted one of the same token length (--clean, --corrupt, --answer, --wrong; or "
    "--pairs with a built-in set, names, capitals, arithmetic or successor, or a CSV/JSONL file), copy one "
    "activation from one run into the other, and measure how much of the answer comes back: the residual "
    "stream at every layer and position, each block's attention and MLP output, each attention head. "
    "patch.csv has one row per cell; normalized is (patched - corrupt) / (clean - corrupt)."
)
