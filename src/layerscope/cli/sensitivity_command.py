"""``layerscope sensitivity``: which block and tensor kind of a quantized model loses the answer, and a recipe."""

from __future__ import annotations

HELP = "which part of a quantized model loses the answer, and a mixed-precision recipe that gets it back"
DESCRIPTION = (
    "Restore each block's tensors (q/k/v/o, gate/up/down) and the embedding of a quantized model (--quantized, or "
    "--bits to quantize the reference with mlx.core.quantize) to the reference's weights, one part at a time, and "
    "measure KL(reference || restored) and top-1 agreement at the last token of each prompt (built-in task prompts "
    "or --text FILE); also each block's output restored from the reference run. --budget 5% (extra bytes over "
    "uniform) or 4.5bpw picks the parts kept at --keep-bits by KL removed per byte and writes recipe.json "
    "(layerscope quantize --recipe reads it; llama.cpp --tensor-type arguments and an MLX per-layer bits map)."
)


def run(config, args) -> int:
    from .common import run_config

    result = run_config(config, args.out, args.force)
    if getattr(result, "recipe", None) is not None:
        print(result.recipe_text(), end="")
    return 0
